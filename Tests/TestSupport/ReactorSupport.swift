import Dispatch
import Foundation
import Selectors
import Syscalls
import SystemPackage

import Reactor

/// The loop every test here runs: epoll, as the server uses.
public typealias Loop = EventLoop<EpollSelector<Int>>

/// A new epoll loop on `clock`, with `options`.
public func makeLoop(clock: any LoopClock = SystemClock(), options: LoopOptions = LoopOptions()) throws -> Loop {
    try Loop(selector: try EpollSelector<Int>(), clock: clock, options: options)
}

/// Hands a value that is not `Sendable` to another thread, at a moment when
/// only one thread uses it (before a thread starts, after it ended, or on
/// the loop's thread through `EventLoopHandle.execute`).
public final class Unchecked<Value>: @unchecked Sendable {
    /// The value handed over.
    public var value: Value
    /// Wraps `value`.
    public init(_ value: Value) { self.value = value }
}

/// What went wrong in a step, so that a failing test says which step.
public struct StepError: Error, CustomStringConvertible {
    /// What went wrong.
    public var description: String
    /// An error with its message.
    public init(_ description: String) { self.description = description }
    /// The error of `step`, which failed with `errno`.
    public init(_ step: String, _ errno: Errno) { description = "\(step): \(errno)" }
}

/// A body running on its own `Thread`, whose result the test waits for with
/// a bound, so that a stuck body fails the test instead of hanging it.
public final class Background<Value: Sendable>: Sendable {
    /// What the thread and the waiters share. The thread's closure holds
    /// only this, not the `Background`, which holds the `Thread`: no cycle,
    /// so that a finished body and what it captured are released.
    private final class Shared: Sendable {
        let done = DispatchSemaphore(value: 0)
        let outcome = Lock<Result<Value, any Error>?>(nil)
    }
    private let shared = Shared()
    private var done: DispatchSemaphore { shared.done }
    private let threadBox = Lock<Unchecked<Thread>?>(nil)

    /// Starts `body` on a new thread.
    public init(_ body: @escaping @Sendable () throws -> Value) {
        let shared = self.shared
        let thread = Thread {
            let result = Result { try body() }
            shared.outcome.withLock { $0 = result }
            shared.done.signal()
        }
        threadBox.withLock { $0 = Unchecked(thread) }
        thread.start()
    }

    /// The thread the body runs on.
    public var thread: Thread { threadBox.withLock { $0!.value } }

    /// Waits for the body to end and returns its value, or throws its error,
    /// or throws when it did not end within `timeout`.
    public func join(timeout: Duration = .seconds(30)) throws -> Value {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        guard done.wait(timeout: .now() + seconds) == .success else {
            throw StepError("the background thread did not finish within \(timeout)")
        }
        done.signal()  // later joins return at once
        return try shared.outcome.withLock { $0! }.get()
    }
}

/// A loop whose `run()` runs on its own thread. Set everything up on the
/// loop before `start()`; afterwards touch it only through `onLoop`.
public final class LoopThread: @unchecked Sendable {
    /// The loop.
    public let loop: Loop
    private var runner: Background<Void>?

    /// Wraps `loop`; `start()` runs it.
    public init(_ loop: Loop) { self.loop = loop }

    /// Starts `run()` on a new thread.
    public func start() {
        let loop = Unchecked(loop)
        runner = Background { try loop.value.run() }
    }

    /// The loop's thread.
    public var thread: Thread { runner!.thread }

    /// Runs `body` on the loop's thread and returns its result; throws if the
    /// loop does not run it within `timeout`.
    public func onLoop<R>(timeout: Duration = .seconds(30), _ body: @escaping (Loop) -> R) throws -> R {
        let done = DispatchSemaphore(value: 0)
        let box = Unchecked<R?>(nil)
        let work = Unchecked(body)
        let loop = Unchecked(loop)
        loop.value.handle.execute { _ in
            box.value = work.value(loop.value)
            done.signal()
        }
        let seconds = Double(timeout.components.seconds)
        guard done.wait(timeout: .now() + seconds) == .success else {
            throw StepError("the loop did not run the work within \(timeout)")
        }
        return box.value!
    }

    /// Waits for `run()` to return (after a stop from anywhere).
    public func join(timeout: Duration = .seconds(30)) throws {
        try runner?.join(timeout: timeout)
    }

    /// Waits until the loop's thread sleeps in `epoll_wait`, so that what the
    /// test sends next must wake it; throws if it is not seen there within
    /// `timeout`.
    public func waitUntilBlocked(timeout: Duration = .seconds(30)) throws {
        guard let thread = try onLoop({ _ in currentThreadID() }) else {
            throw StepError("the loop thread's id is not in /proc/thread-self")
        }
        guard waitUntil(timeout: timeout, { isBlockedInEpollWait(thread) }) else {
            throw StepError("the loop's thread was not seen asleep in epoll_wait within \(timeout)")
        }
    }

    /// Stops the loop from this thread and waits for `run()` to return.
    public func stop() throws {
        loop.handle.stop()
        try join()
    }
}

/// The monotonic clock, for measuring how long something took.
public func now() -> Duration {
    .nanoseconds(system_clock_gettime_monotonic())
}

/// Calls `runOnce` until `condition` holds or `timeout` passes; returns
/// whether it held. For loops driven from the test's own task.
public func drive(_ loop: Loop, timeout: Duration = .seconds(30), until condition: () -> Bool) throws -> Bool {
    let deadline = now() + timeout
    while !condition() {
        if now() >= deadline { return false }
        try loop.runOnce(timeout: .milliseconds(10))
    }
    return true
}
