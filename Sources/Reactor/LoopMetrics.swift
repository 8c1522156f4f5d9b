import Synchronization

/// What a loop has done since it was made: how often it woke, how much it
/// dispatched, and how its time divided between waiting for the kernel and
/// working. Read it from any thread with `EventLoopHandle.metrics`.
///
/// The loop keeps these only when made with `LoopOptions.metrics`; then it
/// reads its clock once more per iteration and once per event (to time
/// each handler), and publishes the counts at the end of each iteration. A
/// loop without metrics pays one branch per iteration.
///
/// ```swift
/// let loop = try EventLoop(selector: try EpollSelector<Int>(), options: LoopOptions(metrics: true))
/// // ... from any thread:
/// if let metrics = loop.handle.metrics { print(metrics.iterations, metrics.busyRatio) }
/// ```
public struct LoopMetrics: Sendable, Equatable, CustomStringConvertible {
    /// Iterations run (`runOnce` calls that returned).
    public var iterations: UInt64 = 0
    /// Readiness events handed to sources (the loop's own wake-up included).
    public var eventsDispatched: UInt64 = 0
    /// Nanoseconds spent waiting for readiness (inside the selector's wait).
    public var waitingNanoseconds: UInt64 = 0
    /// Nanoseconds spent working: from the end of each wait to the end of
    /// its iteration (I/O handlers, timers, deferred work).
    public var busyNanoseconds: UInt64 = 0
    /// Timer bodies run.
    public var timersFired: UInt64 = 0
    /// Jobs run: bodies deferred with `enqueue`, bodies sent with
    /// `EventLoopHandle.execute`, and the jobs of tasks and actors on the
    /// loop's executors.
    public var jobsRun: UInt64 = 0
    /// The longest single call into an I/O handler, a timer or a job, in
    /// nanoseconds.
    public var longestHandlerNanoseconds: UInt64 = 0

    /// Zeroed counts.
    public init() {}

    /// The share of the loop's time spent working, from 0 to 1: busy time
    /// over busy and waiting time; 0 before the first iteration.
    public var busyRatio: Double {
        let total = busyNanoseconds &+ waitingNanoseconds
        return total == 0 ? 0 : Double(busyNanoseconds) / Double(total)
    }

    /// `iterations=... events=... busy_ratio=...` on one line.
    public var description: String {
        "iterations=\(iterations) events=\(eventsDispatched) waiting_ns=\(waitingNanoseconds)"
            + " busy_ns=\(busyNanoseconds) timers=\(timersFired) jobs=\(jobsRun)"
            + " longest_handler_ns=\(longestHandlerNanoseconds)"
    }
}

/// The loop's counts as other threads read them: one atomic per count,
/// written only by the loop's thread at the end of an iteration (a plain
/// store, relaxed), read by anyone. A snapshot's fields may come from two
/// successive iterations; each field is one the loop published.
final class PublishedMetrics: Sendable {
    private let iterations = Atomic<UInt64>(0)
    private let events = Atomic<UInt64>(0)
    private let waiting = Atomic<UInt64>(0)
    private let busy = Atomic<UInt64>(0)
    private let timers = Atomic<UInt64>(0)
    private let jobs = Atomic<UInt64>(0)
    private let longest = Atomic<UInt64>(0)

    /// Publishes `metrics`. Only the loop's thread calls it.
    func publish(_ metrics: LoopMetrics) {
        iterations.store(metrics.iterations, ordering: .relaxed)
        events.store(metrics.eventsDispatched, ordering: .relaxed)
        waiting.store(metrics.waitingNanoseconds, ordering: .relaxed)
        busy.store(metrics.busyNanoseconds, ordering: .relaxed)
        timers.store(metrics.timersFired, ordering: .relaxed)
        jobs.store(metrics.jobsRun, ordering: .relaxed)
        longest.store(metrics.longestHandlerNanoseconds, ordering: .relaxed)
    }

    /// What was last published.
    func snapshot() -> LoopMetrics {
        var metrics = LoopMetrics()
        metrics.iterations = iterations.load(ordering: .relaxed)
        metrics.eventsDispatched = events.load(ordering: .relaxed)
        metrics.waitingNanoseconds = waiting.load(ordering: .relaxed)
        metrics.busyNanoseconds = busy.load(ordering: .relaxed)
        metrics.timersFired = timers.load(ordering: .relaxed)
        metrics.jobsRun = jobs.load(ordering: .relaxed)
        metrics.longestHandlerNanoseconds = longest.load(ordering: .relaxed)
        return metrics
    }
}
