import Selectors
import SystemPackage

/// A single-threaded event loop over any `Selector`: I/O readiness, timers,
/// work from other threads, signals.
///
/// ```swift
/// let loop = try EventLoop(selector: try EpollSelector<Int>())
/// loop.schedule(after: .seconds(1)) { print("one second later"); loop.stop() }
/// try loop.run()
/// ```
///
/// A complete, compiled example: `Snippets/EventLoopExample.swift` (`swift run EventLoopExample`).
///
/// One iteration (`runOnce`) runs these phases in order, as libuv and redis do:
///
/// 1. compute the wait from the nearest timer (no wait if work is queued);
/// 2. wait for readiness;
/// 3. dispatch I/O to each ready source (each source bounds its own work
///    per wake-up, so one busy peer cannot starve the rest);
/// 4. run the timers that are due;
/// 5. run the work deferred with `enqueue`.
///
/// The loop is generic over its selector, so an `EventLoop<EpollSelector<Int>>`
/// calls epoll directly, with no dynamic dispatch on the hot path.
///
/// ## Notes
///
/// - Everything runs on the thread that calls `run()`; the loop is not
///   `Sendable`. Other threads talk to it through `handle`.
/// - Handlers must not block: a blocked handler stalls every connection.
/// - `iterationTime` is read once per iteration; a handler that needs the
///   exact time reads `clock.now()`.
public final class EventLoop<S: Selector>: EventLoopContext where S.Data == Int {
    private let selector: S
    /// The loop's clock (injectable for tests).
    public let clock: any LoopClock
    /// See `EventLoopContext.handle`.
    public let handle: EventLoopHandle
    /// See `EventLoopContext.readBuffer`.
    public let readBuffer: UnsafeMutableRawBufferPointer
    /// See `EventLoopContext.iterationTime`.
    public var iterationTime: UInt64 { time }
    // The hot state below is used only on the loop's thread, and no access
    // spans a call into a handler: no runtime exclusivity check per event.
    @exclusivity(unchecked) private var time: UInt64

    @exclusivity(unchecked) private var sources: [Slot] = []
    private var freeSlots: [Int] = []
    private var timers = TimerHeap()
    private var deferred: [() -> Void] = []
    private var running = false
    private var wakeupID: SourceID?

    private struct Slot {
        var source: EventSource?
        var fileDescriptor: FileDescriptor
        var interest: Interest
    }

    /// Creates a loop over `selector`.
    ///
    /// - Parameters:
    ///   - selector: the readiness backend; the loop takes it over.
    ///   - clock: the time source for timers; `SystemClock` unless testing.
    ///   - readBufferSize: the size of the one buffer all reads go into.
    /// - Throws: `SelectorError` if the wake-up eventfd cannot be created or
    ///   registered.
    public init(selector: S, clock: any LoopClock = SystemClock(), readBufferSize: Int = 64 * 1024)
        throws(SelectorError)
    {
        self.selector = selector
        self.clock = clock
        self.time = clock.now()
        self.readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        do { handle = try EventLoopHandle() } catch { throw SelectorError.system(error.errno ?? .noMemory) }
        wakeupID = try register(
            WakeupSource(handle: handle, loop: self), fileDescriptor: handle.eventFD.fileDescriptor, interest: .read)
    }

    deinit {
        // The handle's eventfd is not closed here: other threads may still
        // hold the handle, and a descriptor closed under them could be reused
        // by a socket their next `execute` would then write into. The handle
        // closes it when the last of them lets go.
        selector.close()
        readBuffer.deallocate()
    }

    /// How many sources are registered, the loop's own wake-up included.
    public var sourceCount: Int { sources.count - freeSlots.count }

    /// Runs iterations until `stop()` (or `handle.stop()`). A `handle.stop()`
    /// made before `run()` starts makes it return at once: it is consumed
    /// when `run()` returns, not discarded when it starts, so a stop sent
    /// just after the loop's thread was started is never lost.
    @_specialize(exported:true,where S == EpollSelector<Int>)
    public func run() throws {
        running = true
        defer {
            running = false
            handle.clearStop()
        }
        while running && !handle.isStopRequested {
            try runOnce()
        }
    }

    /// Runs one iteration: wait (at most `timeout`, `nil` for as long as the
    /// timers allow), dispatch I/O, run due timers, run deferred work.
    ///
    /// Pre-specialised for the default backend: without it, this generic code
    /// would look up the selector's generic metadata on every wake-up.
    @_specialize(exported:true,where S == EpollSelector<Int>)
    public func runOnce(timeout: Duration? = nil) throws {
        // 1. The wait: until the nearest timer, no longer than asked, zero if work is queued.
        let wait = deferred.isEmpty ? waitDuration(limit: timeout) : .zero
        // 2 and 3. Wait, then dispatch I/O to each ready source.
        var timeTaken = false
        try selector.select(timeout: wait) { key, ready in
            if !timeTaken {  // once per wake-up, not per event
                time = clock.now()
                timeTaken = true
            }
            sources[key.data].source?.handle(ready)
        }
        time = clock.now()
        // 4. Timers that are due.
        while let due = timers.popDue(now: time) { due() }
        // 5. Deferred work, including what it defers in turn on the next iteration.
        runDeferred()
    }

    /// See `EventLoopContext.stop()`.
    public func stop() {
        running = false
    }

    // MARK: Registrations

    /// See `EventLoopContext.register(_:fileDescriptor:interest:)`.
    public func register(_ source: EventSource, fileDescriptor: FileDescriptor, interest: Interest)
        throws(SelectorError) -> SourceID
    {
        let slot = freeSlots.last ?? sources.count
        if !interest.isEmpty {
            try selector.register(fileDescriptor, interest: interest, data: slot)
        }
        if !freeSlots.isEmpty { freeSlots.removeLast() }
        let entry = Slot(source: source, fileDescriptor: fileDescriptor, interest: interest)
        if slot == sources.count { sources.append(entry) } else { sources[slot] = entry }
        return SourceID(slot: slot, fileDescriptor: fileDescriptor)
    }

    /// See `EventLoopContext.setInterest(_:_:)`.
    public func setInterest(_ id: SourceID, _ interest: Interest) throws(SelectorError) {
        let current = sources[id.slot].interest
        guard current != interest, sources[id.slot].source != nil else { return }
        if interest.isEmpty {
            try selector.unregister(id.fileDescriptor)
        } else if current.isEmpty {
            try selector.register(id.fileDescriptor, interest: interest, data: id.slot)
        } else {
            try selector.modify(id.fileDescriptor, interest: interest, data: id.slot)
        }
        sources[id.slot].interest = interest
    }

    /// See `EventLoopContext.unregister(_:)`.
    public func unregister(_ id: SourceID) {
        guard id.slot < sources.count, sources[id.slot].source != nil,
            sources[id.slot].fileDescriptor == id.fileDescriptor
        else { return }
        if !sources[id.slot].interest.isEmpty { _ = try? selector.unregister(id.fileDescriptor) }
        sources[id.slot] = Slot(source: nil, fileDescriptor: FileDescriptor(rawValue: -1), interest: [])
        freeSlots.append(id.slot)
    }

    // MARK: Timers and deferred work

    /// See `EventLoopContext.schedule(after:_:)`.
    @discardableResult
    public func schedule(after delay: Duration, _ body: @escaping () -> Void) -> TimerID {
        timers.schedule(at: clock.now() &+ nanoseconds(delay), body)
    }

    /// See `EventLoopContext.schedule(at:_:)`.
    @discardableResult
    public func schedule(at deadline: UInt64, _ body: @escaping () -> Void) -> TimerID {
        timers.schedule(at: deadline, body)
    }

    /// See `EventLoopContext.scheduleRepeating(every:_:)`.
    @discardableResult
    public func scheduleRepeating(every interval: Duration, _ body: @escaping () -> Void) -> TimerID {
        let step = max(nanoseconds(interval), 1)
        return timers.schedule(at: clock.now() &+ step, interval: step, body)
    }

    /// See `EventLoopContext.cancel(_:)`.
    @discardableResult
    public func cancel(_ timer: TimerID) -> Bool {
        timers.cancel(timer)
    }

    /// How many timers are scheduled.
    public var timerCount: Int { timers.count }

    /// See `EventLoopContext.enqueue(_:)`.
    public func enqueue(_ body: @escaping () -> Void) {
        deferred.append(body)
    }

    private func runDeferred() {
        guard !deferred.isEmpty else { return }
        let work = deferred
        deferred.removeAll(keepingCapacity: true)
        for body in work { body() }
    }

    /// The time until the nearest timer, capped by `limit`.
    private func waitDuration(limit: Duration?) -> Duration? {
        guard let deadline = timers.nextDeadline() else { return limit }
        let now = clock.now()
        let untilTimer: Duration = deadline <= now ? .zero : .nanoseconds(Int64(min(deadline - now, UInt64(Int64.max))))
        guard let limit else { return untilTimer }
        return min(limit, untilTimer)
    }
}
