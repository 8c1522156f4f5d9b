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

    init() throws(EpollError) {
        eventFD = try EventFD()
    }

    /// Runs `body` on the loop's thread, during its next iteration. Safe from
    /// any thread. Work enqueued after the loop has stopped for good never runs.
    public func execute(_ body: @escaping @Sendable (any EventLoopContext) -> Void) {
        queue.withLock { $0.append(body) }
        eventFD.signal()
    }

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

    init(handle: EventLoopHandle, loop: any EventLoopContext) {
        self.handle = handle
        self.loop = loop
    }

    override func handle(_ ready: Interest) {
        _ = handle.eventFD.reset()
        for work in handle.takeWork() { work(loop) }
        if handle.isStopRequested { loop.stop() }
    }
}
