import Selectors
import SystemPackage
import Syscalls

/// Why an `AsyncTCPConnection` or `AsyncTCPListener` call failed. Never
/// "would block": a call that cannot go on waits instead.
public enum AsyncTCPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The task was cancelled before or while the call waited: Swift's
    /// `CancellationError`, as a case of this error so that the calls can
    /// throw one type.
    case cancelled
    /// The connection (or listener) was closed here, before or during the call.
    case closed
    /// The peer reset the connection or vanished (`ECONNRESET`, `EPIPE`, ...).
    case reset(Errno)
    /// The loop's `run()` returned while the call waited.
    case loopStopped
    /// No byte moved for the connection's idle timeout; it is closed.
    case idleTimeout

    /// A short phrase.
    public var description: String {
        switch self {
        case .cancelled: "cancelled"
        case .closed: "closed"
        case .reset(let errno): "reset (\(errno))"
        case .loopStopped: "the loop stopped"
        case .idleTimeout: "idle timeout"
        }
    }
}

/// What wakes a parked call.
enum Wake: Sendable {
    case ready
    case failed(AsyncTCPError)
}

/// One call parked on a connection: its continuation and a number that
/// tells this park from the next, for cancellation, which arrives later
/// and from another thread.
struct Parked {
    var continuation: UnsafeContinuation<Wake, Never>?
    var number: UInt64 = 0
    // The waiting task (its address) if a scope over the connection
    // (`withCancellationScope`) watches its cancellation rather than this
    // wait; `nil` when the wait has a handler of its own.
    var coveredTask: UnsafeRawPointer?

    /// Resumes the parked call, if any, with `wake`.
    mutating func resume(_ wake: Wake) {
        guard let continuation else { return }
        self.continuation = nil
        continuation.resume(returning: wake)
    }
}

/// Something whose calls park on a loop: told on the loop's thread when
/// the task of park `number` in `slot` was cancelled.
protocol ParkingPlace: AnyObject, Sendable {
    func cancelPark(_ slot: Int, _ number: UInt64)
}

/// Suspends the calling task until the loop resumes the continuation that
/// `store` keeps. Cancelling the task (on any thread) calls
/// `place.cancelPark(slot, number)` on the loop's thread, which resumes the
/// continuation if it is still that park. Nothing is allocated unless the
/// task is cancelled: the closures here do not escape.
/// The current task's address, to tell tasks apart; `nil` outside a task.
@inline(__always)
func currentTaskAddress() -> UnsafeRawPointer? {
    withUnsafeCurrentTask { task in task.map { unsafeBitCast($0, to: UnsafeRawPointer.self) } }
}

nonisolated(nonsending) func parkOnLoop(
    _ handle: EventLoopHandle, _ place: some ParkingPlace, slot: Int, number: UInt64,
    store: (UnsafeContinuation<Wake, Never>) -> Void
) async -> Wake {
    await withTaskCancellationHandler {
        await withUnsafeContinuation { store($0) }
    } onCancel: {
        handle.execute { _ in place.cancelPark(slot, number) }
    }
}

/// A TCP connection for async code, on a loop's thread: the readiness
/// model. A call tries the system call first and waits only when the
/// kernel says "would block"; it never throws that.
///
/// ```swift
/// try await listener.serve { connection in
///     let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 1)
///     defer { buffer.deallocate() }
///     while let count = try? await connection.read(into: buffer), count > 0 {
///         try? await connection.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
///     }
///     connection.close()
/// }
/// ```
///
/// - **Read**: `read(into:)` returns what is there, up to the buffer's
///   size; `read(_:)` lends the loop's read buffer to a closure instead. End
///   of input is 0 (or `nil`), not an error. The descriptor is registered
///   once; a read that waits leaves read interest on, so a steady stream
///   costs no `epoll_ctl` (interest is turned off only when data arrives
///   while no read waits, and on again by the next read that has to wait).
/// - **Write**: `write(_:)` sends at once and copies only the unsent tail
///   into the connection's `OutboundBuffer`, which the loop flushes when
///   the socket is writable. It waits only while more than `highWaterMark`
///   bytes are queued, until the queue falls to `lowWaterMark`.
/// - **End**: `finish()` half-closes once the queue is flushed; `close()`
///   closes at once, dropping the queue; `closeLingering(timeout:)` finishes,
///   then discards input until the peer closes (or the timeout), then closes,
///   so that the peer reads every reply.
/// - **Cancellation**: cancelling the task resumes a waiting call at once
///   with `.cancelled`; the connection stays open and usable (close it, or
///   call again). A call made by a cancelled task throws `.cancelled` without
///   touching the socket.
/// - **The loop stopping** resumes every waiting call with `.loopStopped`.
///
/// Every method must be called on the loop's thread, from a task that runs
/// there (one that prefers the loop's task executor, as `AsyncTCPListener`'s
/// tasks do). Debug builds stop the program otherwise. The type is
/// `Sendable` only so that it can be handed to such a task.
public final class AsyncTCPConnection: EventSource, ParkingPlace, @unchecked Sendable {
    private unowned let loop: any EventLoopContext
    private let descriptor: CInt
    // The loop's read buffer (`read(_:)` lends it), kept to spare a call
    // through `loop` per read. A stopped loop fails every call first.
    private let readBuffer: UnsafeMutableRawBufferPointer
    @exclusivity(unchecked) private var id: SourceID = .none
    private let options: TCPConnection.Options
    @exclusivity(unchecked) private var queue = OutboundBuffer()
    @exclusivity(unchecked) private var reader = Parked()
    @exclusivity(unchecked) private var writer = Parked()
    @exclusivity(unchecked) private var finisher = Parked()
    @exclusivity(unchecked) private var nextPark: UInt64 = 1
    // The task `withCancellationScope` watches, while it runs (its address:
    // compared, never used).
    @exclusivity(unchecked) private var coveringTask: UnsafeRawPointer?
    @exclusivity(unchecked) private var readInterest = true
    // Reads since the last wait, for `readsPerWakeup`.
    @exclusivity(unchecked) private var readsInARow = 0
    // Whether input may be waiting: false after a read that did not fill
    // its buffer (the socket was drained then), true again once the loop
    // reports readiness. A read that finds it false waits at once, without
    // a `recv` that would only say EAGAIN: level-triggered epoll reports
    // whatever arrived since.
    @exclusivity(unchecked) private var mayBeReadable = true
    // What the loop watches the socket for now.
    @exclusivity(unchecked) private var watched: Interest = .read
    /// How many times the connection changed what the loop watches it for
    /// (each one `epoll_ctl`): for tests of the steady state.
    @exclusivity(unchecked) private(set) var interestChanges = 0
    @exclusivity(unchecked) private var finishing = false
    @exclusivity(unchecked) private var halfClosed = false
    @exclusivity(unchecked) private var failure: AsyncTCPError?
    private let onClose: (() -> Void)?

    /// Whether the connection is closed (`close()`, or the idle timeout).
    @exclusivity(unchecked) public private(set) var isClosed = false

    /// Bytes read from the peer so far.
    @exclusivity(unchecked) public private(set) var bytesReceived = 0
    /// Bytes the kernel took for the peer so far (not those still queued).
    @exclusivity(unchecked) public private(set) var bytesSent = 0
    /// The most bytes ever queued for the peer.
    @exclusivity(unchecked) public private(set) var peakQueuedBytes = 0
    /// Whether a read saw the peer's end of input (rather than the end
    /// `endInput(firstInputWithin:)` set).
    @exclusivity(unchecked) public private(set) var peerFinished = false

    // `endInput`: reads stop at this many bytes received; `nil`: no limit.
    @exclusivity(unchecked) private var inputLimit: Int?
    @exclusivity(unchecked) private var awaitsFirstInput = false
    @exclusivity(unchecked) private var firstInputTimer: TimerID?
    // The idle timeout: the last time a byte moved, and the one timer.
    @exclusivity(unchecked) private var lastActivity: UInt64 = 0
    @exclusivity(unchecked) private var idleTimer: TimerID?

    /// Takes over `fileDescriptor`, a connected non-blocking TCP socket,
    /// and watches it on `loop`.
    ///
    /// - Parameters:
    ///   - loop: the loop; the connection holds it `unowned`.
    ///   - fileDescriptor: the socket, which the connection now owns.
    ///   - options: the water marks (`highWaterMark`, `lowWaterMark`), the
    ///     idle timeout (after which waiting calls end with `.idleTimeout`),
    ///     and `readsPerWakeup`: after that many reads in a row that did not
    ///     wait, the next one waits for the loop's next turn, so that one
    ///     busy peer cannot starve the loop's other connections.
    ///   - onClose: called once, on the loop's thread, when the connection
    ///     closes (for example `TCPListener.connectionDidClose`).
    /// - Throws: `SelectorError` if the loop cannot watch the socket (for
    ///   select, a descriptor of 1024 or more), which is then closed.
    public init(
        loop: any EventLoopContext, fileDescriptor: FileDescriptor, options: TCPConnection.Options = .init(),
        onClose: (() -> Void)? = nil
    ) throws(SelectorError) {
        self.loop = loop
        self.descriptor = fileDescriptor.rawValue
        self.readBuffer = loop.readBuffer
        self.options = options
        self.onClose = onClose
        super.init()
        do {
            id = try loop.register(self, fileDescriptor: fileDescriptor, interest: .read)
        } catch {
            _ = system_close(fileDescriptor.rawValue)
            isClosed = true
            throw error
        }
        loop.handle.jobs.onStop[ObjectIdentifier(self)] = { [unowned self] in self.loopStopped() }
        lastActivity = loop.clock.now()
        if let idle = options.idleTimeout { armIdleTimer(after: idle) }
    }

    deinit {
        if !isClosed { _ = system_close(descriptor) }
    }

    /// How many bytes are queued for the peer.
    public var queuedByteCount: Int { queue.count }

    // MARK: Reading

    /// Reads what has arrived into `buffer`, waiting until something has
    /// if nothing has. Returns how many bytes, 0 at the end of input.
    ///
    /// - Throws: `.cancelled`, `.closed`, `.reset`, `.loopStopped`.
    nonisolated(nonsending) public func read(into buffer: UnsafeMutableRawBufferPointer) async throws(AsyncTCPError)
        -> Int
    {
        checkThread("AsyncTCPConnection.read")
        while true {
            try check()
            guard let room = allowed(buffer) else { return 0 }
            if mustWait() {
                try await waitForInput()
                continue
            }
            switch Socket.receive(descriptor, into: room) {
            case .success(.processed(let count)):
                if count < room.count { mayBeReadable = false }
                received(count)
                return count
            case .success(.wouldBlock): try await waitForInput()
            case .failure(let errno): throw fail(.reset(errno))
            }
        }
    }

    /// The part of `buffer` a read may fill: all of it, or up to the limit
    /// `endInput` set; `nil` once that limit is reached.
    @inline(__always)
    private func allowed(_ buffer: UnsafeMutableRawBufferPointer) -> UnsafeMutableRawBufferPointer? {
        guard let inputLimit else { return buffer }
        if awaitsFirstInput { return buffer }
        let left = inputLimit - bytesReceived
        if left <= 0 { return nil }
        return left >= buffer.count ? buffer : UnsafeMutableRawBufferPointer(rebasing: buffer[..<left])
    }

    /// A read returned `count` bytes (0: the peer's end of input).
    @inline(__always)
    private func received(_ count: Int) {
        if count == 0 {
            peerFinished = true
            return
        }
        bytesReceived &+= count
        if idleTimer != nil { lastActivity = loop.iterationTime }
        if awaitsFirstInput {
            // The first bytes during a drain: what has arrived with them is
            // the input still answered.
            awaitsFirstInput = false
            if let firstInputTimer { loop.cancel(firstInputTimer) }
            firstInputTimer = nil
            inputLimit = bytesReceived + ((try? system_unread_bytes(descriptor).get()) ?? 0)
        }
    }

    /// Reads what has arrived into the loop's read buffer and calls `body`
    /// with it, waiting until something has if nothing has. Returns what
    /// `body` returns; `nil` at the end of input (without calling it). The
    /// bytes are valid only inside `body`, which must not wait.
    ///
    /// - Throws: `.cancelled`, `.closed`, `.reset`, `.loopStopped`.
    nonisolated(nonsending) public func read<Result>(_ body: (UnsafeMutableRawBufferPointer) -> Result)
        async throws(AsyncTCPError) -> Result?
    {
        checkThread("AsyncTCPConnection.read")
        while true {
            try check()
            guard let room = allowed(readBuffer) else { return nil }
            if mustWait() {
                try await waitForInput()
                continue
            }
            switch Socket.receive(descriptor, into: room) {
            case .success(.processed(0)):
                received(0)
                return nil
            case .success(.processed(let count)):
                if count < room.count { mayBeReadable = false }
                received(count)
                return body(UnsafeMutableRawBufferPointer(rebasing: room[..<count]))
            case .success(.wouldBlock): try await waitForInput()
            case .failure(let errno): throw fail(.reset(errno))
            }
        }
    }

    /// Whether the next read must wait for the loop before its `recv`:
    /// after `readsPerWakeup` reads in a row that did not wait (then it
    /// waits for the loop's next turn, the next iteration if the socket is
    /// still readable: one busy peer cannot keep the loop from the others),
    /// or when the socket was drained by the last read. Counts the read
    /// otherwise.
    @inline(__always)
    private func mustWait() -> Bool {
        if readsInARow >= options.readsPerWakeup || !mayBeReadable { return true }
        readsInARow += 1
        return false
    }

    /// Waits until the socket is readable (or the call must end).
    nonisolated(nonsending) private func waitForInput() async throws(AsyncTCPError) {
        readsInARow = 0
        if !readInterest {
            readInterest = true
            updateInterest()
        }
        try await park(.reader)
    }

    // MARK: Writing

    /// Sends `bytes`: at once, as far as the kernel takes them; the rest is
    /// queued and sent when the socket is writable. Waits only while more
    /// than `highWaterMark` bytes are queued, until the queue falls to
    /// `lowWaterMark`.
    ///
    /// - Throws: `.cancelled` (while waiting; the bytes stay queued),
    ///   `.closed` (also after `finish()`), `.reset`, `.loopStopped`.
    nonisolated(nonsending) public func write(_ bytes: UnsafeRawBufferPointer) async throws(AsyncTCPError) {
        checkThread("AsyncTCPConnection.write")
        try send(bytes)
        try await waitForRoom()
    }

    /// Sends `bytes` (see `write(_:)`).
    nonisolated(nonsending) public func write(_ bytes: [UInt8]) async throws(AsyncTCPError) {
        checkThread("AsyncTCPConnection.write")
        // Sent or queued before any wait: the array's storage is used only
        // in this synchronous part.
        let sent = bytes.withUnsafeBytes { pointer in Result { () throws(AsyncTCPError) in try send(pointer) } }
        try sent.get()
        try await waitForRoom()
    }

    /// The synchronous part of a write: sends what the kernel takes, queues the rest.
    private func send(_ bytes: UnsafeRawBufferPointer) throws(AsyncTCPError) {
        try check()
        if finishing { throw .closed }
        var rest = bytes
        if queue.isEmpty {
            while !rest.isEmpty {
                switch Socket.send(descriptor, rest) {
                case .success(.processed(let sent)):
                    bytesSent &+= sent
                    rest = UnsafeRawBufferPointer(rebasing: rest[sent...])
                case .success(.wouldBlock):
                    queue.append(rest)
                    rest = UnsafeRawBufferPointer(start: nil, count: 0)
                    peakQueuedBytes = max(peakQueuedBytes, queue.count)
                    updateInterest()
                case .failure(let errno): throw fail(.reset(errno))
                }
            }
        } else {
            queue.append(rest)
            peakQueuedBytes = max(peakQueuedBytes, queue.count)
        }
        if idleTimer != nil { lastActivity = loop.iterationTime }
    }

    /// Waits while more than the high-water mark is queued, until the
    /// queue falls to the low one.
    nonisolated(nonsending) private func waitForRoom() async throws(AsyncTCPError) {
        while queue.count > options.highWaterMark {
            try await park(.writer)
            try check()
        }
    }

    // MARK: Ending

    /// Waits until everything queued has been sent, then shuts the sending
    /// side (the peer reads end of input). Reading still works; call
    /// `close()` when done.
    ///
    /// - Throws: `.cancelled` (the queue is kept, not yet shut), `.closed`,
    ///   `.reset`, `.loopStopped`.
    nonisolated(nonsending) public func finish() async throws(AsyncTCPError) {
        checkThread("AsyncTCPConnection.finish")
        try check()
        finishing = true
        while !queue.isEmpty {
            try await park(.finisher)
            try check()
        }
        if !halfClosed {
            halfClosed = true
            if case .failure(let errno) = system_shutdown(descriptor, ShutdownHow.write) { throw fail(.reset(errno)) }
        }
    }

    /// Finishes (see `finish()`), then reads and discards what the peer
    /// still sends until it closes or `timeout` passes, then closes. The
    /// peer reads every reply instead of a reset.
    nonisolated(nonsending) public func closeLingering(timeout: Duration = .seconds(5)) async {
        checkThread("AsyncTCPConnection.closeLingering")
        defer { close() }
        do { try await finish() } catch { return }
        if peerFinished { return }
        let timer = loop.schedule(after: timeout) { [weak self] in self?.close() }
        defer { loop.cancel(timer) }
        // Whatever comes now is dropped, past any limit `endInput` set.
        inputLimit = nil
        awaitsFirstInput = false
        while let count = try? await read({ $0.count }), count > 0 {}
    }

    /// Ends the input here, for a drain: the bytes that have arrived so far
    /// (`FIONREAD` now) can still be read; after them `read` returns 0 (or
    /// `nil`) as at the peer's end of input, and a read waiting now returns
    /// it at once. A connection that has received nothing yet first waits
    /// up to `wait` for its first bytes (a client that has just connected
    /// usually has its request on the way), then answers what arrived with
    /// them. `peerFinished` tells this end from the peer's.
    public func endInput(firstInputWithin wait: Duration = .zero) {
        checkThread("AsyncTCPConnection.endInput")
        guard !isClosed, inputLimit == nil, !peerFinished else { return }
        inputLimit = bytesReceived + ((try? system_unread_bytes(descriptor).get()) ?? 0)
        if bytesReceived == 0 && inputLimit == 0 && wait > .zero {
            awaitsFirstInput = true
            firstInputTimer = loop.schedule(after: wait) { [weak self] in
                guard let self else { return }
                self.firstInputTimer = nil
                self.awaitsFirstInput = false
                self.inputLimit = self.bytesReceived
                self.reader.resume(.ready)
            }
            return
        }
        if inputLimit == bytesReceived { reader.resume(.ready) }
    }

    /// Closes the connection now: the queue is dropped, every waiting call
    /// resumes with `.closed`. Calling it again does nothing.
    public func close() {
        checkThread("AsyncTCPConnection.close")
        guard !isClosed else { return }
        isClosed = true
        failure = failure ?? .closed
        if let idleTimer { loop.cancel(idleTimer) }
        idleTimer = nil
        if let firstInputTimer { loop.cancel(firstInputTimer) }
        firstInputTimer = nil
        loop.unregister(id)
        loop.handle.jobs.onStop[ObjectIdentifier(self)] = nil
        _ = system_close(descriptor)
        queue.removeAll()
        wakeAll(.failed(failure ?? .closed))
        onClose?()
    }

    // MARK: On the loop

    /// The loop says the socket is ready.
    public override func handle(_ ready: Interest) {
        if ready.contains(.read) {
            mayBeReadable = true
            if reader.continuation != nil {
                reader.resume(.ready)
            } else if readInterest {
                // Nobody reads now: stop the level-triggered wake-ups until
                // a read has to wait.
                readInterest = false
                updateInterest()
            }
        }
        if ready.contains(.write) { flush() }
    }

    /// Sends what is queued, and wakes the writer and finisher that waited for it.
    private func flush() {
        var failed: Errno?
        while !queue.isEmpty, failed == nil {
            var blocked = false
            queue.consume { bytes in
                switch Socket.send(descriptor, bytes) {
                case .success(.processed(let sent)):
                    bytesSent &+= sent
                    return sent
                case .success(.wouldBlock):
                    blocked = true
                    return 0
                case .failure(let errno):
                    failed = errno
                    return 0
                }
            }
            if blocked { break }
        }
        if let failed {
            failure = .reset(failed)
            wakeAll(.failed(.reset(failed)))
            return
        }
        if idleTimer != nil { lastActivity = loop.iterationTime }
        if queue.count <= options.lowWaterMark { writer.resume(.ready) }
        if queue.isEmpty {
            finisher.resume(.ready)
            updateInterest()
        }
    }

    /// Sets the registration's interest from what is wanted now: reading
    /// unless turned off, writing while something is queued.
    private func updateInterest() {
        guard !isClosed else { return }
        var interest: Interest = []
        if readInterest { interest.insert(.read) }
        if !queue.isEmpty { interest.insert(.write) }
        guard interest != watched else { return }
        watched = interest
        interestChanges += 1
        if (try? loop.setInterest(id, interest)) == nil {
            failure = failure ?? .closed
        }
    }

    /// Waits in `slot` until the loop wakes it; throws what woke it if not
    /// readiness. A cancelled task does not wait.
    nonisolated(nonsending) private func park(_ slot: Slot) async throws(AsyncTCPError) {
        if Task.isCancelled { throw .cancelled }
        let number = nextPark
        nextPark &+= 1
        let wake: Wake
        if let coveringTask, currentTaskAddress() == coveringTask {
            // The scope's one handler resumes this wait if the task is
            // cancelled: no cancellation record per wait.
            wake = await withUnsafeContinuation {
                self[slot] = Parked(continuation: $0, number: number, coveredTask: coveringTask)
            }
        } else {
            wake = await parkOnLoop(loop.handle, self, slot: slot.rawValue, number: number) {
                self[slot] = Parked(continuation: $0, number: number)
            }
        }
        if case .failed(let error) = wake { throw error }
    }

    /// Runs `body`, the calling task's whole use of the connection, with
    /// the task's cancellation watched once for all of it instead of once
    /// per wait: cancelling the task resumes whichever of its calls is
    /// waiting with `.cancelled`, exactly as without the scope, but a wait
    /// then adds and removes no cancellation record of its own (each one
    /// takes the task's status lock in the Concurrency runtime). Waits by
    /// other tasks keep their own handlers. `AsyncTCPListener.serve` runs
    /// each connection's handler in one; use it in a task of your own that
    /// serves one connection. On the loop's thread; one scope at a time.
    nonisolated(nonsending) public func withCancellationScope(_ body: nonisolated(nonsending) () async -> Void) async {
        let outer = coveringTask
        guard let task = currentTaskAddress() else { return await body() }
        coveringTask = task
        defer { coveringTask = outer }
        let handle = loop.handle
        // The address, as a number, to cross to the loop's thread.
        let taskNumber = UInt(bitPattern: task)
        await withTaskCancellationHandler {
            await body()
        } onCancel: {
            handle.execute { _ in self.cancelCoveredParks(of: taskNumber) }
        }
    }

    /// Whether a `withCancellationScope` scope runs now (for tests).
    var coversCancellation: Bool { coveringTask != nil }

    /// Resumes with `.cancelled` every call that task `taskNumber` waits
    /// in under `withCancellationScope`.
    private func cancelCoveredParks(of taskNumber: UInt) {
        for slot in [Slot.reader, .writer, .finisher]
        where self[slot].coveredTask.map(UInt.init(bitPattern:)) == taskNumber {
            self[slot].resume(.failed(.cancelled))
        }
    }

    /// Resumes the call parked in `slot` with `.cancelled`, if it is park `number`.
    func cancelPark(_ slot: Int, _ number: UInt64) {
        guard let slot = Slot(rawValue: slot), self[slot].number == number else { return }
        self[slot].resume(.failed(.cancelled))
    }

    /// Where a call waits.
    enum Slot: Int, Sendable {
        case reader, writer, finisher
    }

    private subscript(slot: Slot) -> Parked {
        get {
            switch slot {
            case .reader: reader
            case .writer: writer
            case .finisher: finisher
            }
        }
        set {
            switch slot {
            case .reader: reader = newValue
            case .writer: writer = newValue
            case .finisher: finisher = newValue
            }
        }
    }

    /// The loop's `run()` returned: every parked call ends.
    private func loopStopped() {
        failure = failure ?? .loopStopped
        wakeAll(.failed(.loopStopped))
    }

    /// One timer for the moment the connection would become idle; reads
    /// and writes only move `lastActivity`, and a timer that fires early is
    /// armed again for the new moment.
    private func armIdleTimer(after delay: Duration) {
        idleTimer = loop.schedule(at: lastActivity &+ nanoseconds(delay)) { [weak self] in
            guard let self, !self.isClosed else { return }
            if self.loop.clock.now() >= self.lastActivity &+ nanoseconds(delay) {
                self.idleTimer = nil
                self.failure = self.failure ?? .idleTimeout
                self.close()
            } else {
                self.armIdleTimer(after: delay)
            }
        }
    }

    private func wakeAll(_ wake: Wake) {
        reader.resume(wake)
        writer.resume(wake)
        finisher.resume(wake)
    }

    /// The debug build's check that a call comes from the loop's thread;
    /// nothing (not even a call through `loop`) in a release build.
    @inline(__always)
    private func checkThread(_ function: StaticString) {
        #if DEBUG
            loop.checkThread(function)
        #endif
    }

    /// Throws if the call cannot go on.
    @inline(__always)
    private func check() throws(AsyncTCPError) {
        if let failure { throw failure }
        if Task.isCancelled { throw .cancelled }
    }

    /// Records `error` and returns it.
    private func fail(_ error: AsyncTCPError) -> AsyncTCPError {
        failure = failure ?? error
        return error
    }

    /// `AsyncTCPConnection on descriptor N` in diagnostics.
    public override var diagnosticName: String { "AsyncTCPConnection" }
}
