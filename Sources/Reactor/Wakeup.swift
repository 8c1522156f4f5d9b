import LinuxEpoll
import Selectors
import Syscalls
import Synchronization

/// A `Sendable` handle on an `EventLoop` for other threads: run a closure on
/// the loop, or stop it. It wakes a waiting loop through an eventfd.
///
/// ```swift
/// let handle = loop.handle
/// Thread { handle.execute { loop in print("on the loop") } }.start()
/// handle.stop()
/// ```
public final class EventLoopHandle: Sendable {
    let eventFD: EventFD
    private let queue = Lock<[@Sendable (any EventLoopContext) -> Void]>([])
    private let stopRequested = Atomic<Bool>(false)
    // The loop's clock reading when its current busy period began (it
    // returned from the wait); 0 while it waits, or does not run.
    private let busy = Atomic<UInt64>(0)
    // The loop's published counts; `nil` unless it keeps metrics.
    let published: PublishedMetrics?

    // The queue of the loop's executors.
    let jobs: LoopJobs
    /// The loop as a `TaskExecutor`: a task that prefers it runs on the
    /// loop's thread (see `LoopTaskExecutor`).
    public let taskExecutor: LoopTaskExecutor
    /// The loop as a `SerialExecutor`, for actors pinned to the loop (see
    /// `LoopSerialExecutor`).
    public let serialExecutor: LoopSerialExecutor

    init(metrics: Bool) throws(EpollError) {
        eventFD = try EventFD()
        published = metrics ? PublishedMetrics() : nil
        jobs = LoopJobs(eventFD: eventFD)
        taskExecutor = LoopTaskExecutor(jobs: jobs)
        serialExecutor = LoopSerialExecutor(jobs: jobs)
    }

    /// Starts `body` as a task that prefers the loop's task executor: it
    /// runs on the loop's thread, and so do the tasks it creates in task
    /// groups and `async let`. A plain `Task {}` made inside it does not
    /// inherit the preference (it runs on the global pool); make those with
    /// this method too. Safe from any thread.
    @discardableResult
    public func task<Success: Sendable>(
        _ body: sending @escaping @isolated(any) () async throws -> Success
    ) -> Task<Success, any Error> {
        Task(executorPreference: taskExecutor, operation: body)
    }

    /// The loop's `LoopMetrics` as of its last iteration; `nil` unless the
    /// loop was made with `LoopOptions.metrics`. Safe from any thread: a
    /// few atomic loads, no lock and no system call.
    public var metrics: LoopMetrics? { published?.snapshot() }

    /// Runs `body` on the loop's thread, during its next iteration. Safe from
    /// any thread. Work enqueued after the loop has stopped for good never runs.
    ///
    /// Only the first `execute` into an empty queue writes the loop's
    /// eventfd: a burst of work costs one wake-up, not one system call each.
    public func execute(_ body: @escaping @Sendable (any EventLoopContext) -> Void) {
        let first = queue.withLock { work in
            work.append(body)
            return work.count == 1
        }
        if first { eventFD.signal() }
    }

    /// When the loop's current busy period began, as a reading of its clock:
    /// the moment it came back from waiting for readiness. `nil` while it
    /// waits, and while it does not run. A value far in the past means a
    /// handler has held the loop that long: `LoopGroup`'s acceptor hands such
    /// a loop no new connection.
    public var busySince: UInt64? {
        let since = busy.load(ordering: .relaxed)
        return since == 0 ? nil : since
    }

    /// Whether the loop has been busy, without waiting once, for longer than
    /// `limit` at `now` (a reading of the loop's clock).
    public func isStalled(longerThan limit: Duration, now: UInt64) -> Bool {
        guard let since = busySince, now > since else { return false }
        return now - since > nanoseconds(limit)
    }

    /// The loop is about to wait.
    @inline(__always)
    func markWaiting() { busy.store(0, ordering: .relaxed) }

    /// The loop came back from waiting at `time`.
    @inline(__always)
    func markBusy(_ time: UInt64) { busy.store(max(time, 1), ordering: .relaxed) }

    /// Asks the loop to stop after its current iteration. Safe from any thread.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        eventFD.signal()
    }

    /// Whether `stop()` was called and not yet consumed by a `run()` that returned.
    var isStopRequested: Bool { stopRequested.load(ordering: .acquiring) }

    /// Consumes a stop request, when `run()` returns.
    func clearStop() { stopRequested.store(false, ordering: .releasing) }

    /// Takes the queued work, leaving the queue empty.
    func takeWork() -> [@Sendable (any EventLoopContext) -> Void] {
        queue.withLock { work in
            defer { work.removeAll() }
            return work
        }
    }
}

/// The loop's event source for its handle's eventfd.
final class WakeupSource: EventSource {
    private let handle: EventLoopHandle
    private unowned let loop: any EventLoopContext
    /// The bodies run so far, for `LoopMetrics.jobsRun` (the loop's thread only).
    private(set) var executed: UInt64 = 0

    init(handle: EventLoopHandle, loop: any EventLoopContext) {
        self.handle = handle
        self.loop = loop
    }

    override func handle(_ ready: Interest) {
        // Reset before taking the work: an `execute` between the two finds
        // the queue non-empty and does not signal, and its work is taken here.
        _ = handle.eventFD.reset()
        // Jobs for the loop's executors are only moved here: they run in
        // the loop's job phase, after the dispatch.
        handle.jobs.takeRemote()
        let work = handle.takeWork()
        executed &+= UInt64(work.count)
        for body in work { body(loop) }
        if handle.isStopRequested { loop.stop() }
    }

    override var diagnosticName: String { "work sent with EventLoopHandle.execute" }
}
