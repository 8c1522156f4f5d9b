import LinuxEpoll
import Syscalls
import Synchronization

/// A loop's `TaskExecutor`: tasks that prefer it run on the loop's thread,
/// in the loop's own phase, after I/O and timers (see `EventLoop`).
///
/// ```swift
/// let executor = loop.handle.taskExecutor
/// Task(executorPreference: executor) { await work() }  // runs on the loop
/// ```
///
/// Enqueuing from the loop's thread is a plain append, with no lock and no
/// system call; from another thread it takes the handle's lock, and writes
/// the loop's eventfd only when its queue was empty. Jobs are kept as
/// `UnownedJob`, not closures: nothing is allocated per job.
///
/// When the loop's `run()` returns, it first runs the jobs queued (and what
/// they queue, for a bounded number of rounds), so that tasks parked on the
/// loop get to finish; jobs that come after it returned run on the global
/// pool, until the loop runs again. No job is lost.
///
/// A separate object from `LoopSerialExecutor`: one object that is both
/// makes the runtime enqueue twice as often in nonisolated code.
public final class LoopTaskExecutor: TaskExecutor, Sendable {
    let jobs: LoopJobs

    init(jobs: LoopJobs) { self.jobs = jobs }

    /// Queues `job` to run on the loop. Safe from any thread.
    public func enqueue(_ job: consuming ExecutorJob) {
        jobs.enqueue(LoopJob(job: UnownedJob(job), serial: false))
    }

    /// Whether the calling thread is the loop's, while it runs.
    public var isCurrent: Bool { jobs.isOnLoopThread }
}

/// A loop's `SerialExecutor`: an actor whose `unownedExecutor` is this one
/// runs on the loop's thread, so its code and the loop's handlers never run
/// at the same time, and need no lock between them.
///
/// ```swift
/// actor Registry {
///     let executor: LoopSerialExecutor
///     nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
///     init(loop: EventLoopHandle) { executor = loop.serialExecutor }
/// }
/// ```
///
/// Its jobs share the task executor's queue and phase. Once the loop's
/// `run()` has returned, they wait for the loop's next run (never on
/// another thread, which would break the actor's isolation): an actor
/// pinned to a loop is for the loop's lifetime. A caller with no
/// task-executor preference resumes on the global pool between awaits and
/// hops back for each call into the actor: give the calling task the
/// loop's task executor (`EventLoopHandle.task(_:)`) to stay on the loop.
public final class LoopSerialExecutor: SerialExecutor, Sendable {
    let jobs: LoopJobs

    init(jobs: LoopJobs) { self.jobs = jobs }

    /// Queues `job` to run on the loop. Safe from any thread.
    public func enqueue(_ job: consuming ExecutorJob) {
        jobs.enqueue(LoopJob(job: UnownedJob(job), serial: true))
    }

    /// This executor, unowned, for `Actor.unownedExecutor`.
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Stops the program unless called on the loop's thread while the loop
    /// runs: what `assumeIsolated` and the runtime's isolation checks call.
    public func checkIsolated() {
        precondition(jobs.isOnLoopThread, "not on the loop's thread: code isolated to the loop ran elsewhere")
    }
}

/// One job and the executor it came through.
struct LoopJob: Sendable {
    let job: UnownedJob
    /// Enqueued through the serial executor (an actor's job) rather than the task executor.
    let serial: Bool
}

/// The queue both executors of a loop share, and the thread that runs it.
final class LoopJobs: @unchecked Sendable {
    // @unchecked: `local` and `running` are touched only on the loop's
    // thread (`owner`); `remote` only under its lock; `owner` is atomic.
    private let eventFD: EventFD
    private let owner = Atomic<UInt>(0)
    private let remote = Lock<[LoopJob]>([])
    /// Jobs from the loop's own thread, and the remote ones moved here.
    @exclusivity(unchecked) private(set) var local: [LoopJob] = []
    @exclusivity(unchecked) private var running: [LoopJob] = []
    /// What to call when the loop's `run()` returns, before the last jobs
    /// run: each async connection resumes its waiting calls with
    /// `.loopStopped`. The loop's thread only.
    var onStop: [ObjectIdentifier: () -> Void] = [:]
    private let stopped = Atomic<Bool>(false)

    init(eventFD: EventFD) { self.eventFD = eventFD }

    /// Whether the calling thread runs the loop now.
    var isOnLoopThread: Bool {
        owner.load(ordering: .relaxed) == UInt(bitPattern: system_current_thread_token())
    }

    /// The loop's thread begins running jobs and I/O; `false` if another
    /// call on this thread already did (nested `runOnce`).
    func enter() -> Bool {
        let me = UInt(bitPattern: system_current_thread_token())
        if owner.load(ordering: .relaxed) == me { return false }
        owner.store(me, ordering: .relaxed)
        stopped.store(false, ordering: .releasing)
        return true
    }

    /// The loop's thread stops running; jobs from now on go through the lock.
    func leave() { owner.store(0, ordering: .relaxed) }

    func enqueue(_ job: LoopJob) {
        if isOnLoopThread {
            local.append(job)
            return
        }
        if !job.serial && stopped.load(ordering: .acquiring) {
            // The loop has stopped: a task's job runs on the global pool
            // rather than wait for a loop that may not run again. (An
            // actor's job waits: run concurrently, it would break the
            // actor's isolation.)
            globalConcurrentExecutor.enqueue(ExecutorJob(job.job))
            return
        }
        let first = remote.withLock { queue in
            queue.append(job)
            return queue.count == 1
        }
        if first { eventFD.signal() }
    }

    /// Moves the jobs other threads queued into `local`. On the loop's thread.
    func takeRemote() {
        remote.withLock { queue in
            guard !queue.isEmpty else { return }
            if local.isEmpty {
                swap(&local, &queue)
            } else {
                local.append(contentsOf: queue)
                queue.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Runs the jobs queued so far (what they queue in turn runs next
    /// time); returns how many ran. On the loop's thread.
    func runQueued(task: LoopTaskExecutor, serial: LoopSerialExecutor, _ after: () -> Void = {}) -> Int {
        guard !local.isEmpty else { return 0 }
        swap(&local, &running)
        let taskExecutor = task.asUnownedTaskExecutor()
        let serialExecutor = serial.asUnownedSerialExecutor()
        for entry in running {
            if entry.serial {
                entry.job.runSynchronously(isolatedTo: serialExecutor, taskExecutor: taskExecutor)
            } else {
                entry.job.runSynchronously(on: taskExecutor)
            }
            after()
        }
        let count = running.count
        running.removeAll(keepingCapacity: true)
        return count
    }

    /// The loop's `run()` returned: tasks' jobs enqueued from now on go to
    /// the global pool, and so do those still queued; actors' jobs stay
    /// queued for the loop's next run.
    func markStopped() {
        stopped.store(true, ordering: .releasing)
        let left =
            remote.withLock { queue -> [LoopJob] in
                let tasks = queue.filter { !$0.serial }
                queue.removeAll { !$0.serial }
                return tasks
            } + local.filter { !$0.serial }
        local.removeAll { !$0.serial }
        for entry in left { globalConcurrentExecutor.enqueue(ExecutorJob(entry.job)) }
    }
}
