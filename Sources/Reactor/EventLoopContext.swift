import Selectors
import SystemPackage

/// What sources and handlers can ask of the loop that runs them, whatever its
/// selector: timers, deferred work, registrations, the shared read buffer,
/// stopping. `EventLoop` is the implementation; this protocol lets
/// `TCPConnection` and your handlers stay non-generic.
///
/// Every method must be called on the loop's thread; from another thread,
/// use `EventLoopHandle`. Debug builds check it (`checkThread(_:)`).
public protocol EventLoopContext: AnyObject {
    /// The loop's clock reading, taken once per iteration just after the wait:
    /// cheap to read on every chunk.
    var iterationTime: UInt64 { get }

    /// The loop's clock.
    var clock: any LoopClock { get }

    /// The buffer every read on this loop goes into (64 KiB by default). Its
    /// contents are valid only until the handler that received them returns.
    var readBuffer: UnsafeMutableRawBufferPointer { get }

    /// A handle for other threads: wake the loop, run work on it, stop it.
    var handle: EventLoopHandle { get }

    /// Watches `fileDescriptor` for `interest` (may be empty: registered but
    /// silent) on behalf of `source`.
    func register(_ source: EventSource, fileDescriptor: FileDescriptor, interest: Interest) throws(SelectorError)
        -> SourceID

    /// Changes what a source is watched for; an empty interest silences it.
    func setInterest(_ id: SourceID, _ interest: Interest) throws(SelectorError)

    /// Stops watching a source. Call it before closing the descriptor.
    func unregister(_ id: SourceID)

    /// Runs `body` once, `delay` from now.
    @discardableResult
    func schedule(after delay: Duration, _ body: @escaping () -> Void) -> TimerID

    /// Runs `body` once at `deadline` (a reading of `clock`).
    @discardableResult
    func schedule(at deadline: UInt64, _ body: @escaping () -> Void) -> TimerID

    /// Runs `body` every `interval`, first `interval` from now, until
    /// cancelled. The loop keeps `body` as long as the timer lives: a `body`
    /// that captures the loop strongly keeps the loop alive too; capture it
    /// `unowned`.
    @discardableResult
    func scheduleRepeating(every interval: Duration, _ body: @escaping () -> Void) -> TimerID

    /// Cancels a timer; returns whether it was still scheduled.
    @discardableResult
    func cancel(_ timer: TimerID) -> Bool

    /// Runs `body` at the end of the current iteration, after I/O and timers.
    /// `fileID` and `line` name the job in the
    /// loop's slow-handler diagnostic.
    func enqueue(_ body: @escaping () -> Void, fileID: StaticString, line: UInt)

    /// Makes `run()` return after the current iteration.
    func stop()

    /// In debug builds, stops the program with a message naming `function`
    /// if called from a thread other than the one running the loop (while it
    /// runs). In release builds it does nothing. Every method of the context
    /// checks itself; sources call it from their own entry points.
    func checkThread(_ function: StaticString)
}

extension EventLoopContext {
    /// Runs `body` at the end of the current iteration, after I/O and
    /// timers; the diagnostics name it by the caller's file and line.
    public func enqueue(fileID: StaticString = #fileID, line: UInt = #line, _ body: @escaping () -> Void) {
        enqueue(body, fileID: fileID, line: line)
    }
}
