import Selectors
import Syscalls
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
/// 5. run the work deferred with `enqueue`, then the jobs of the tasks and
///    actors on the loop's executors (`handle.taskExecutor`,
///    `handle.serialExecutor`). Work or jobs queued in this phase make the
///    next wait non-blocking.
///
/// The loop is generic over its selector, so an `EventLoop<EpollSelector<Int>>`
/// calls epoll directly, with no dynamic dispatch on the hot path.
///
/// ## Notes
///
/// - Everything runs on the thread that calls `run()`; the loop is not
///   `Sendable`. Other threads talk to it through `handle`. In debug builds,
///   every `EventLoopContext` method (and `TCPConnection.write`) called from
///   another thread while the loop runs stops the program with a message.
/// - Handlers must not block: a blocked handler stalls every connection.
/// - `iterationTime` is read once per iteration; a handler that needs the
///   exact time reads `clock.now()`.
public final class EventLoop<S: Selector>: EventLoopContext where S.Data == Int {
    // What each event reads is declared first (stored properties are laid
    // out in order), so that it shares one cache line. It is used only on
    // the loop's thread, and no access spans a call into a handler: no
    // runtime exclusivity check per event.
    private let selector: S
    @exclusivity(unchecked) private var sources: [Slot] = []
    @exclusivity(unchecked) private var time: UInt64
    /// The loop's clock (injectable for tests).
    public let clock: any LoopClock
    /// See `EventLoopContext.handle`.
    public let handle: EventLoopHandle
    /// See `EventLoopContext.readBuffer`.
    public let readBuffer: UnsafeMutableRawBufferPointer
    /// See `EventLoopContext.iterationTime`.
    public var iterationTime: UInt64 { time }

    private var freeSlots: [Int] = []
    // No access to these spans a call to a timer or deferred body (each is
    // taken out first), so they need no runtime exclusivity check either.
    @exclusivity(unchecked) private var timers = TimerHeap()
    @exclusivity(unchecked) private var deferred: [Deferred] = []
    // The array `runDeferred` runs from, swapped with `deferred` so that
    // neither is ever copied: both keep their capacity, and an iteration
    // with deferred work allocates nothing.
    @exclusivity(unchecked) private var runningDeferred: [Deferred] = []

    /// A deferred body. Wrapped, so that the array holds the closure as it
    /// is: an array of bare closures stores each one behind a conversion
    /// thunk, which allocates on every `enqueue`.
    private struct Deferred {
        let body: () -> Void
        // Where it was enqueued, for the slow-handler diagnostic.
        let fileID: StaticString
        let line: UInt
    }
    private var running = false
    private var wakeupID: SourceID?
    // Sources that unregistered while I/O was being dispatched, kept alive
    // until the batch ends: sources are called without a retain (see
    // `Slot`), so none may be freed while a handler runs.
    @exclusivity(unchecked) private var dispatching = false
    // Appended to and emptied without calling out to the sources' code
    // (releasing one runs no method of the loop that touches it).
    @exclusivity(unchecked) private var retired: [EventSource] = []
    // The generation of the next registration; 0 is never used.
    private var nextGeneration: UInt32 = 1
    // The thread inside `runOnce`, for the debug-build thread check; `nil`
    // while the loop does not run (then whoever holds it may use it).
    private var owner: UnsafeRawPointer?

    // Metrics and diagnostics: none of this is touched unless `instrumented`.
    private let instrumented: Bool
    // The queue of the loop's executors (the handle's), kept here too: one
    // load fewer per iteration.
    private let jobs: LoopJobs
    private let diagnostics: LoopDiagnostics
    private let slowLimit: UInt64
    @exclusivity(unchecked) private var recorded = LoopMetrics()
    private var wakeupSource: WakeupSource?
    // Per slot, the busy-loop diagnostic's record (grown on demand).
    @exclusivity(unchecked) private var watches: [Watch] = []
    // When the last busy-loop report left, to send at most one a second.
    private var lastBusyReport: UInt64 = 0

    /// A slot's record for the busy-loop diagnostic.
    private struct Watch {
        /// The registration it is about; another one starts afresh.
        var generation: UInt32 = 0
        /// The last iteration (`recorded.iterations` before it) in which the slot was ready.
        var lastIteration: UInt64 = .max
        /// Wake-ups in a row without progress.
        var wakeups = 0
        /// The mark after the slot's last measured call: a source whose
        /// work runs later (a task on the loop) moves bytes between calls.
        var lastMark: Int64?
        /// Whether this registration was reported already.
        var reported = false
    }

    /// One registration. The descriptor is the `SourceID`'s, and its
    /// interest the selector's to keep (its key for the descriptor; none for
    /// a source registered silent); the loop keeps only what the selector
    /// cannot: the source, and which registration of the slot this is.
    private struct Slot {
        /// The source, retained by the slot while it is registered (released
        /// by `unregister`, or after the batch if it unregisters during
        /// one). Unmanaged, so that dispatch borrows it: no retain and
        /// release per event.
        var source: Unmanaged<EventSource>?
        /// Matches the `SourceID` of the registration; a stale id does not.
        var generation: UInt32
        /// Whether the source is a `TCPConnection`, found once at
        /// registration: the common case, called directly (see `dispatchIO`).
        var isConnection: Bool
    }

    /// Creates a loop over `selector`.
    ///
    /// - Parameters:
    ///   - selector: the readiness backend; the loop takes it over.
    ///   - clock: the time source for timers; `SystemClock` unless testing.
    ///   - readBufferSize: the size of the one buffer all reads go into.
    ///   - options: metrics and diagnostics (see `LoopOptions`); by default
    ///     no metrics, and diagnostics in debug builds only.
    /// - Throws: `SelectorError` if the wake-up eventfd cannot be created or
    ///   registered.
    public init(
        selector: S, clock: any LoopClock = SystemClock(), readBufferSize: Int = 64 * 1024,
        options: LoopOptions = LoopOptions()
    ) throws(SelectorError) {
        self.selector = selector
        self.clock = clock
        self.time = clock.now()
        self.readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        self.diagnostics = options.diagnostics
        self.instrumented = options.metrics || options.diagnostics.isEnabled
        self.slowLimit = options.diagnostics.slowHandlerThreshold.map { nanoseconds($0) } ?? .max
        do { handle = try EventLoopHandle(metrics: options.metrics) } catch {
            throw SelectorError.system(error.errno ?? .noMemory)
        }
        jobs = handle.jobs
        let wakeup = WakeupSource(handle: handle, loop: self)
        wakeupSource = wakeup
        wakeupID = try register(wakeup, fileDescriptor: handle.eventFD.fileDescriptor, interest: .read)
    }

    deinit {
        // The handle's eventfd is not closed here: other threads may still
        // hold the handle, and a descriptor closed under them could be reused
        // by a socket their next `execute` would then write into. The handle
        // closes it when the last of them lets go.
        selector.close()
        readBuffer.deallocate()
        for slot in sources { slot.source?.release() }
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
        let entered = handle.jobs.enter()
        defer {
            running = false
            handle.markWaiting()
            handle.clearStop()
            if entered { finishJobs() }
        }
        while running && !handle.isStopRequested {
            try iterate(timeout: nil)
        }
    }

    /// When `run()` returns: resumes every call an `AsyncTCPConnection` has
    /// waiting with `.loopStopped`, then runs the jobs still queued, and what they
    /// queue in turn, for a bounded number of rounds, so that the tasks on
    /// the loop get to finish; then hands the executors over to the global
    /// pool until the loop runs again (see `LoopTaskExecutor`).
    private func finishJobs() {
        // Calls waiting on the loop end, and their tasks go on to finish.
        for stop in handle.jobs.onStop.values { stop() }
        for _ in 0..<Self.finishingRounds {
            handle.jobs.takeRemote()
            if handle.jobs.local.isEmpty { break }
            runJobs()
        }
        handle.jobs.leave()
        handle.jobs.markStopped()
    }

    /// How many rounds of jobs `run()` runs after the loop stopped.
    static var finishingRounds: Int { 1024 }

    /// Runs the jobs of the loop's executors queued so far.
    @inline(__always)
    private func runJobs() {
        if !jobs.local.isEmpty { _ = jobs.runQueued(task: handle.taskExecutor, serial: handle.serialExecutor) }
    }

    /// Runs one iteration: wait (at most `timeout`, `nil` for as long as the
    /// timers allow), dispatch I/O, run due timers, run deferred work.
    ///
    /// Pre-specialised for the default backend: without it, this generic code
    /// would look up the selector's generic metadata on every wake-up.
    @_specialize(exported:true,where S == EpollSelector<Int>)
    public func runOnce(timeout: Duration? = nil) throws {
        // Called alone (not from `run()`): this thread runs the executors' jobs meanwhile.
        let entered = jobs.enter()
        defer { if entered { jobs.leave() } }
        try iterate(timeout: timeout)
    }

    /// One iteration, on a thread that runs the executors' jobs.
    @inline(__always)
    private func iterate(timeout: Duration?) throws {
        #if DEBUG
            let outer = owner
            owner = system_current_thread_token()
            defer { owner = outer }
        #endif
        if instrumented { return try runOnceInstrumented(timeout: timeout) }
        // 1. The wait: until the nearest timer, no longer than asked, zero if work is queued.
        let wait = deferred.isEmpty && jobs.local.isEmpty ? waitDuration(limit: timeout) : .zero
        // 2 and 3. Wait, then dispatch I/O to each ready source.
        let timeTaken = try dispatchIO(wait: wait)
        // The time again for the timers, which may have come due during the
        // dispatch; without timers, the time the dispatch took is enough.
        if !timeTaken || !timers.isEmpty { time = clock.now() }
        if !timeTaken { handle.markBusy(time) }
        // 4. Timers that are due.
        while let due = timers.popDue(now: time) { due() }
        // 5. Deferred work, then the jobs of the loop's executors; what
        // either queues in turn runs on the next iteration.
        runDeferred()
        runJobs()
    }

    /// Waits, then calls each ready source's handler. Returns whether it
    /// read the time (it does once per wake-up, at the first event).
    private func dispatchIO(wait: Duration?) throws -> Bool {
        var timeTaken = false
        handle.markWaiting()
        dispatching = true
        defer {
            dispatching = false
            if !retired.isEmpty { retired.removeAll(keepingCapacity: true) }
        }
        try selector.select(timeout: wait) { key, ready in
            if !timeTaken {
                time = clock.now()
                handle.markBusy(time)
                timeTaken = true
            }
            // The connection, the common case, is called directly, so that its
            // read path inlines here; any other source through its class.
            if sources[key.data].isConnection {
                sources[key.data].source?._withUnsafeGuaranteedRef {
                    unsafeDowncast($0, to: TCPConnection.self).handle(ready)
                }
            } else {
                sources[key.data].source?._withUnsafeGuaranteedRef { $0.handle(ready) }
            }
        }
        return timeTaken
    }

    /// See `EventLoopContext.stop()`.
    public func stop() {
        checkThread()
        running = false
    }

    /// See `EventLoopContext.checkThread(_:)`.
    @inline(__always)
    public func checkThread(_ function: StaticString = #function) {
        #if DEBUG
            if let owner, owner != system_current_thread_token() {
                preconditionFailure("EventLoop.\(function) called from a thread other than the loop's")
            }
        #endif
    }

    // MARK: Registrations

    /// See `EventLoopContext.register(_:fileDescriptor:interest:)`.
    public func register(_ source: EventSource, fileDescriptor: FileDescriptor, interest: Interest)
        throws(SelectorError) -> SourceID
    {
        checkThread()
        let slot = freeSlots.last ?? sources.count
        if !interest.isEmpty {
            try selector.register(fileDescriptor, interest: interest, data: slot)
        }
        if !freeSlots.isEmpty { freeSlots.removeLast() }
        let generation = nextGeneration
        nextGeneration = nextGeneration == .max ? 1 : nextGeneration + 1
        let entry = Slot(source: .passRetained(source), generation: generation, isConnection: source is TCPConnection)
        if slot == sources.count { sources.append(entry) } else { sources[slot] = entry }
        return SourceID(slot: slot, generation: generation, fileDescriptor: fileDescriptor)
    }

    /// See `EventLoopContext.setInterest(_:_:)`.
    public func setInterest(_ id: SourceID, _ interest: Interest) throws(SelectorError) {
        checkThread()
        guard isCurrent(id) else { throw .notRegistered(id.fileDescriptor) }
        // The selector holds the interest; no key means none (registered silent).
        let current = selector.key(for: id.fileDescriptor)?.interest ?? []
        guard current != interest else { return }
        if interest.isEmpty {
            try selector.unregister(id.fileDescriptor)
        } else if current.isEmpty {
            try selector.register(id.fileDescriptor, interest: interest, data: id.slot)
        } else {
            try selector.modify(id.fileDescriptor, interest: interest, data: id.slot)
        }
    }

    /// The interest `id` is watched for now; `nil` if `id` is stale.
    public func interest(of id: SourceID) -> Interest? {
        checkThread()
        guard isCurrent(id) else { return nil }
        return selector.key(for: id.fileDescriptor)?.interest ?? []
    }

    /// See `EventLoopContext.unregister(_:)`.
    public func unregister(_ id: SourceID) {
        checkThread()
        guard isCurrent(id), let source = sources[id.slot].source else { return }
        if selector.key(for: id.fileDescriptor) != nil { _ = try? selector.unregister(id.fileDescriptor) }
        sources[id.slot] = Slot(source: nil, generation: 0, isConnection: false)
        freeSlots.append(id.slot)
        // During a batch the source may be the one running: released after it.
        if dispatching { retired.append(source.takeRetainedValue()) } else { source.release() }
    }

    /// Whether `id` names the registration its slot holds now.
    private func isCurrent(_ id: SourceID) -> Bool {
        id.slot >= 0 && id.slot < sources.count && sources[id.slot].generation == id.generation
            && sources[id.slot].source != nil
    }

    // MARK: Timers and deferred work

    /// See `EventLoopContext.schedule(after:_:)`.
    @discardableResult
    public func schedule(after delay: Duration, _ body: @escaping () -> Void) -> TimerID {
        checkThread()
        return timers.schedule(at: clock.now() &+ nanoseconds(delay), body)
    }

    /// See `EventLoopContext.schedule(at:_:)`.
    @discardableResult
    public func schedule(at deadline: UInt64, _ body: @escaping () -> Void) -> TimerID {
        checkThread()
        return timers.schedule(at: deadline, body)
    }

    /// See `EventLoopContext.scheduleRepeating(every:_:)`.
    @discardableResult
    public func scheduleRepeating(every interval: Duration, _ body: @escaping () -> Void) -> TimerID {
        checkThread()
        let step = max(nanoseconds(interval), 1)
        return timers.schedule(at: clock.now() &+ step, interval: step, body)
    }

    /// See `EventLoopContext.cancel(_:)`.
    @discardableResult
    public func cancel(_ timer: TimerID) -> Bool {
        checkThread()
        return timers.cancel(timer)
    }

    /// How many timers are scheduled.
    public var timerCount: Int { timers.count }

    /// See `EventLoopContext.enqueue(_:fileID:line:)`.
    public func enqueue(_ body: @escaping () -> Void, fileID: StaticString, line: UInt) {
        checkThread()
        deferred.append(Deferred(body: body, fileID: fileID, line: line))
    }

    private func runDeferred() {
        guard !deferred.isEmpty else { return }
        // What the bodies enqueue goes into the other array, for the next iteration.
        swap(&deferred, &runningDeferred)
        for index in runningDeferred.indices { runningDeferred[index].body() }
        runningDeferred.removeAll(keepingCapacity: true)
    }

    // MARK: Metrics and diagnostics

    /// `runOnce` with every call timed, counted and checked: the path of a
    /// loop with metrics or diagnostics on.
    private func runOnceInstrumented(timeout: Duration?) throws {
        let wait = deferred.isEmpty && jobs.local.isEmpty ? waitDuration(limit: timeout) : .zero
        let start = clock.now()
        var last: UInt64 = 0
        do {
            handle.markWaiting()
            dispatching = true
            defer {
                dispatching = false
                if !retired.isEmpty { retired.removeAll(keepingCapacity: true) }
            }
            try selector.select(timeout: wait) { key, ready in
                if last == 0 { last = woke() }
                dispatchTimed(key.data, key.fileDescriptor, ready, &last)
            }
        }
        if last == 0 { last = woke() }
        let busyFrom = time
        recorded.waitingNanoseconds &+= busyFrom &- min(start, busyFrom)
        // The timers see the time after the dispatch.
        time = last
        while let due = timers.popDue(now: time) {
            due()
            recorded.timersFired &+= 1
            finished(&last) { "a timer" }
        }
        if !deferred.isEmpty {
            swap(&deferred, &runningDeferred)
            for index in runningDeferred.indices {
                runningDeferred[index].body()
                recorded.jobsRun &+= 1
                finished(&last) { [job = runningDeferred[index]] in "a job enqueued at \(job.fileID):\(job.line)" }
            }
            runningDeferred.removeAll(keepingCapacity: true)
        }
        let jobs = handle.jobs.runQueued(task: handle.taskExecutor, serial: handle.serialExecutor) {
            self.finished(&last) { "a task's job" }
        }
        recorded.jobsRun &+= UInt64(jobs)
        recorded.iterations &+= 1
        recorded.busyNanoseconds &+= last &- min(busyFrom, last)
        if let published = handle.published {
            var snapshot = recorded
            snapshot.jobsRun &+= wakeupSource?.executed ?? 0
            published.publish(snapshot)
        }
    }

    /// The loop is back from its wait: the time, for the iteration and the
    /// stall marker.
    private func woke() -> UInt64 {
        time = clock.now()
        handle.markBusy(time)
        return time
    }

    /// Calls the source of `slot`, timed, and checked for a busy loop.
    private func dispatchTimed(_ slot: Int, _ fd: FileDescriptor, _ ready: Interest, _ last: inout UInt64) {
        guard let source = sources[slot].source else { return }
        let generation = sources[slot].generation
        let before = diagnostics.busyLoopThreshold == nil ? nil : progressBefore(slot, generation, fd, source)
        if sources[slot].isConnection {
            source._withUnsafeGuaranteedRef { unsafeDowncast($0, to: TCPConnection.self).handle(ready) }
        } else {
            source._withUnsafeGuaranteedRef { $0.handle(ready) }
        }
        recorded.eventsDispatched &+= 1
        // The source may have unregistered: `retired` keeps it alive for this batch.
        finished(&last) { "\(source.takeUnretainedValue().diagnosticName) on descriptor \(fd.rawValue)" }
        if let before { progressAfter(slot, generation, fd, before, source) }
    }

    /// Ends one timed call that began at `last`: counts it, reports it if it
    /// ran too long, and moves `last` to now.
    private func finished(_ last: inout UInt64, _ name: () -> String) {
        let now = clock.now()
        let took = now &- min(last, now)
        last = now
        if took > recorded.longestHandlerNanoseconds { recorded.longestHandlerNanoseconds = took }
        if took > slowLimit {
            diagnostics.report(
                .slowHandler(source: name(), duration: .nanoseconds(Int64(min(took, UInt64(Int64.max))))))
        }
    }

    /// Before a source's call: when its descriptor was ready in the last
    /// iteration too, where its reader and writer stand (`nil` otherwise).
    private func progressBefore(
        _ slot: Int, _ generation: UInt32, _ fd: FileDescriptor, _ source: Unmanaged<EventSource>
    )
        -> Int64?
    {
        if slot >= watches.count { watches.append(contentsOf: repeatElement(Watch(), count: slot + 1 - watches.count)) }
        if watches[slot].generation != generation { watches[slot] = Watch(generation: generation) }
        let iteration = recorded.iterations
        let inARow = watches[slot].lastIteration != .max && watches[slot].lastIteration &+ 1 == iteration
        watches[slot].lastIteration = iteration
        guard inARow, !watches[slot].reported else {
            watches[slot].wakeups = 0
            watches[slot].lastMark = nil
            return nil
        }
        switch system_progress_mark(fd.rawValue) {
        case .success(let progress): return progress?.mark
        case .failure(let errno):
            if errno == .badFileDescriptor {
                noProgress(slot, fd, source, .closedWhileRegistered)
            }
            return nil
        }
    }

    /// After a source's call: whether it moved a byte since `before`, or
    /// anything moved since its last call (a task on the loop does its
    /// reading after the dispatch).
    private func progressAfter(
        _ slot: Int, _ generation: UInt32, _ fd: FileDescriptor, _ before: Int64, _ source: Unmanaged<EventSource>
    ) {
        // Gone or replaced during its call: nothing to judge.
        guard sources[slot].generation == generation, sources[slot].source != nil else { return }
        guard case .success(let measured) = system_progress_mark(fd.rawValue), let after = measured else {
            watches[slot].wakeups = 0
            watches[slot].lastMark = nil
            return
        }
        // No progress: nothing moved during the call, nor since the last one.
        let since = watches[slot].lastMark
        watches[slot].lastMark = after.mark
        guard after.mark == before, since == before else {
            watches[slot].wakeups = 0
            return
        }
        noProgress(slot, fd, source, .noProgress(unread: after.unread))
    }

    /// One more wake-up without progress for `slot`; reported once at the
    /// threshold, and no more often than once a second per loop.
    private func noProgress(
        _ slot: Int, _ fd: FileDescriptor, _ source: Unmanaged<EventSource>, _ reason: BusyLoopReason
    ) {
        guard let threshold = diagnostics.busyLoopThreshold else { return }
        watches[slot].wakeups += 1
        guard watches[slot].wakeups >= threshold else { return }
        let now = clock.now()
        guard lastBusyReport == 0 || now &- lastBusyReport >= 1_000_000_000 else { return }
        lastBusyReport = max(now, 1)
        watches[slot].reported = true
        diagnostics.report(
            .busyLoop(
                source: source.takeUnretainedValue().diagnosticName, fileDescriptor: fd.rawValue,
                wakeups: watches[slot].wakeups, reason: reason))
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

extension EventLoop where S == EpollSelector<Int> {
    /// Compares the selector's table with the kernel's own list of its
    /// registrations (see `EpollSelector.audit()`): descriptors closed
    /// without being unregistered, and registrations made or changed with
    /// `epoll_ctl` behind the loop's back. On the loop's thread.
    public func auditSelector() throws(SelectorError) -> EpollAudit {
        checkThread()
        return try selector.audit()
    }
}
