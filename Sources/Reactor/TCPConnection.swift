import Selectors
import SystemPackage
import Syscalls

/// What a `TCPConnection` tells its owner. All calls come on the loop's thread.
public protocol TCPConnectionHandler: AnyObject {
    /// Bytes arrived. They live in the loop's shared read buffer: use or copy
    /// them before returning. The buffer is mutable so that a handler can
    /// transform in place and write the same bytes back without a copy.
    func connection(_ connection: TCPConnection, didRead bytes: UnsafeMutableRawBufferPointer)

    /// The connection is closed and its descriptor released; no other call follows.
    func connectionDidClose(_ connection: TCPConnection, reason: TCPConnection.CloseReason)
}

/// A non-blocking TCP connection on an event loop, with an outbound queue
/// and flow control.
///
/// - **Reads** go into the loop's one reusable buffer and straight to the
///   handler; at most `readsPerWakeup` per wake-up, for fairness.
/// - **Writes** go to the kernel at once; only what it did not take is
///   copied into the connection's `OutboundBuffer`, and only then is write
///   interest turned on. It is turned off as soon as the queue is empty.
/// - **Backpressure**: when the queue passes `highWaterMark`, the connection
///   stops reading from its peer (a client that does not read its replies
///   cannot make the server buffer without bound); below `lowWaterMark` it
///   reads again.
/// - **Half-close**: when the peer shuts its writing side, the queued replies
///   are flushed, then the connection closes.
/// - **Closing**: `close()` and `closeLingering()` deliver what was written
///   before them; bytes written after them are dropped. `abort()` drops the
///   queue too. `closeLingeringAfterInput(firstInputWithin:)` first answers
///   the input that has already arrived (a drain that loses no request).
///   `state` says where a connection is, one `State` at a time.
/// - **Reset** (`ECONNRESET`, `EPIPE`): closes quietly; never a SIGPIPE.
/// - **Idle timeout**: closes a connection that moved no byte for that long.
public final class TCPConnection: EventSource {
    /// How a connection behaves.
    public struct Options: Sendable {
        /// Stop reading from the peer when this many bytes are queued for it.
        public var highWaterMark = 64 * 1024
        /// Read again when the queue falls to this many bytes.
        public var lowWaterMark = 16 * 1024
        /// At most this many reads per wake-up.
        public var readsPerWakeup = 4
        /// Close the connection after this long without a byte moved; `nil`: never.
        public var idleTimeout: Duration?

        /// The defaults: 64 KiB / 16 KiB water marks, 4 reads per wake-up, no idle timeout.
        public init() {}
    }

    /// Why a connection closed.
    public enum CloseReason: Sendable, Equatable, CustomStringConvertible {
        /// The peer finished sending and every reply was delivered.
        case endOfInput
        /// `close()` or `abort()` was called here.
        case closedLocally
        /// No byte moved for the idle timeout.
        case idleTimeout
        /// The peer reset the connection or vanished (`ECONNRESET`, `EPIPE`, ...).
        case reset(Errno)

        /// A short phrase.
        public var description: String {
            switch self {
            case .endOfInput: "end of input"
            case .closedLocally: "closed locally"
            case .idleTimeout: "idle timeout"
            case .reset(let errno): "reset (\(errno))"
            }
        }
    }

    /// Where a connection is in its life. Reading may be paused beside any of
    /// these (`isReadingPaused`), by backpressure.
    public enum State: Sendable, Equatable, CustomStringConvertible {
        /// Reading and writing.
        case open
        /// `closeLingeringAfterInput(firstInputWithin:)` was called: still
        /// reading and writing, until it has read the bytes that were unread
        /// when it was called, or a read finds no more input (and, for a
        /// connection that had received nothing, its first bytes came or the
        /// wait for them ended); then lingering.
        case answering
        /// Delivering what is queued, then closing; reading no more, and
        /// dropping writes. Either `close()` was called, or the peer finished
        /// sending (`afterEndOfInput`; the close reason is then `.endOfInput`).
        case draining(afterEndOfInput: Bool)
        /// `closeLingering()` was called: delivering what is queued, then
        /// sending end of input (`halfClosed` from then on), then reading and
        /// dropping whatever the peer sends until its end of input, and only
        /// then closing. Writes are dropped.
        case lingering(halfClosed: Bool)
        /// Closed, the descriptor released. Writes are dropped.
        case closed

        /// A short phrase.
        public var description: String {
            switch self {
            case .open: "open"
            case .answering: "answering what has arrived"
            case .draining(let afterEndOfInput): afterEndOfInput ? "draining after end of input" : "draining"
            case .lingering(let halfClosed): halfClosed ? "lingering, half-closed" : "lingering"
            case .closed: "closed"
            }
        }
    }

    // Stored properties are laid out in the order they are declared. What
    // every chunk reads comes first, so that it shares the object's first
    // two cache lines (between two events the kernel's own work evicts most
    // of the cache, so each extra line is a likely miss); what opening,
    // closing and the idle timer use comes after.
    //
    // The state below is touched only on the loop's thread, by this class's
    // own methods, none of which holds an access across a call that could
    // re-enter it: the runtime's exclusivity checks (a thread-local lookup
    // per access, on every chunk) are turned off for it.
    @exclusivity(unchecked) private var descriptor: FileDescriptor
    // Starts closed: it is open once the loop watches it.
    @exclusivity(unchecked) private var current = Phase.closed
    @exclusivity(unchecked) private var readPaused = false
    // Activity is only read by the idle timer: without one, reads and writes
    // skip the loop's clock (a call through the context protocol per chunk).
    private let tracksActivity: Bool
    // Meaningful while the state is not `.closed`.
    @exclusivity(unchecked) private var id = SourceID.none
    // Copies of `options.readsPerWakeup` and of the loop's read buffer, kept
    // with the hot state for the same reason.
    private let readsPerWakeup: Int
    private let readBuffer: UnsafeMutableRawBufferPointer
    @exclusivity(unchecked) private var owner: TCPConnectionHandler?
    @exclusivity(unchecked) private var outbound = OutboundBuffer()
    @exclusivity(unchecked) private var received = 0
    @exclusivity(unchecked) private var sent = 0
    // unowned(unsafe): the loop holds every registered source, so it outlives
    // this connection's use of it; a checked reference would cost an atomic
    // retain and release on every chunk.
    private unowned(unsafe) let loop: any EventLoopContext
    private let options: Options
    @exclusivity(unchecked) private var lastActivity: UInt64
    private var idleTimer: TimerID?
    // While answering: the end of the wait for a first byte, if one is awaited.
    private var firstInputTimer: TimerID?
    private var awaitsFirstInput = false
    // While answering: how many bytes in all `received` must reach to have
    // read everything that had arrived when the answering began (or, for a
    // connection that awaited its first bytes, when they came).
    private var answerUntil = 0

    /// The owner. Held strongly until the connection closes, then released,
    /// so that the cycle between a server and its connections ends with them
    /// (a weak reference would cost an atomic load on every chunk).
    public var handler: TCPConnectionHandler? {
        get { owner }
        set { owner = newValue }
    }

    /// The connection's descriptor (-1 once closed).
    public var fileDescriptor: FileDescriptor { descriptor }

    /// How many bytes are queued, waiting for the peer to read.
    public var queuedBytes: Int { outbound.count }

    /// The most bytes that were ever queued at once.
    public private(set) var peakQueuedBytes = 0

    /// How many bytes were read from the peer.
    public var bytesReceived: Int { received }

    /// How many bytes the kernel took for the peer: written and not dropped.
    /// Bytes still queued, or dropped by `abort()` or a reset, do not count.
    public var bytesSent: Int { sent }

    /// Whether reading is paused because the peer is not reading its replies.
    public var isReadingPaused: Bool { readPaused }

    /// Where the connection is in its life.
    public var state: State {
        switch current {
        case .open: .open
        case .answering: .answering
        case .draining: .draining(afterEndOfInput: false)
        case .drainingAfterEndOfInput: .draining(afterEndOfInput: true)
        case .lingering: .lingering(halfClosed: false)
        case .lingeringHalfClosed: .lingering(halfClosed: true)
        case .closed: .closed
        }
    }

    /// `State`, flattened to one byte: what the hot path compares. The
    /// phases that read and write come first (`reads`).
    private enum Phase: UInt8 {
        case open, answering, draining, drainingAfterEndOfInput, lingering, lingeringHalfClosed, closed

        /// Whether a connection in this phase reads from its peer and accepts
        /// writes: one comparison.
        @inline(__always) var reads: Bool { rawValue <= Phase.answering.rawValue }
    }

    /// Whether the connection is closed.
    public var isClosed: Bool { current == .closed }

    /// Takes over `fileDescriptor` (a connected, non-blocking socket) and
    /// starts reading from it.
    ///
    /// - Throws: `SelectorError` if the loop cannot watch it; the descriptor
    ///   is then closed.
    public init(
        loop: any EventLoopContext,
        fileDescriptor: FileDescriptor,
        options: Options = Options(),
        handler: TCPConnectionHandler
    ) throws(SelectorError) {
        precondition(options.lowWaterMark <= options.highWaterMark, "lowWaterMark above highWaterMark")
        self.loop = loop
        self.options = options
        self.descriptor = fileDescriptor
        self.owner = handler
        // The clock now, not the iteration's time: a connection accepted late
        // in a long iteration would otherwise look older than it is, and its
        // idle timeout could fire early.
        self.lastActivity = loop.clock.now()
        self.tracksActivity = options.idleTimeout != nil
        self.readBuffer = loop.readBuffer
        self.readsPerWakeup = options.readsPerWakeup
        super.init()
        do {
            id = try loop.register(self, fileDescriptor: fileDescriptor, interest: .read)
            current = .open
        } catch {
            _ = system_close(descriptor.rawValue)
            descriptor = FileDescriptor(rawValue: -1)
            throw error
        }
        if let idle = options.idleTimeout { armIdleTimer(after: idle) }
    }

    deinit {
        // Still open only if the loop let go of it without a close (the loop
        // was released): the loop is gone, so only the socket is closed.
        if descriptor.rawValue >= 0 { _ = system_close(descriptor.rawValue) }
    }

    /// Sends `bytes` now, queueing what the kernel does not take.
    ///
    /// Accepted while the state is `.open` or `.answering`. Dropped once the connection is
    /// closing in any way: after `close()` and `closeLingering()` (what was
    /// written before them is delivered, nothing after), after `abort()`, and
    /// after the peer's end of input (the connection then closes as soon as
    /// its queue is delivered; what a handler writes while reading the last
    /// bytes, before the end of input is seen, is delivered).
    public func write(_ bytes: UnsafeRawBufferPointer) {
        #if DEBUG
            loop.checkThread("TCPConnection.write")
        #endif
        guard acceptsWrites, !bytes.isEmpty else { return }
        if outbound.isEmpty {
            switch Socket.send(descriptor.rawValue, bytes) {
            case .success(.processed(let count)):
                sent &+= count
                if tracksActivity { lastActivity = loop.iterationTime }
                if count == bytes.count { return }
                outbound.append(UnsafeRawBufferPointer(rebasing: bytes[count...]))
            case .success(.wouldBlock):
                outbound.append(bytes)
            case .failure(let errno):
                finish(.reset(errno))
                return
            }
        } else {
            outbound.append(bytes)
        }
        peakQueuedBytes = max(peakQueuedBytes, outbound.count)
        updateInterest()
    }

    /// Closes gracefully: stops reading, delivers what is queued, then closes.
    /// Later writes are dropped. Does nothing once closing has begun in any
    /// way (a lingering close goes on; `abort()` ends any of them).
    public func close() {
        guard current == .open else { return }
        if outbound.isEmpty { return finish(.closedLocally) }
        current = .draining
        updateInterest()
    }

    /// Closes gracefully without losing replies to a reset: stops reading,
    /// delivers what is queued, sends end of input (`shutdown(SHUT_WR)`),
    /// then reads and drops whatever the peer still sends until it closes its
    /// side, and only then closes. What Apache and nginx call a lingering close.
    ///
    /// `close()` closes as soon as the queue is empty. If the peer sent bytes
    /// that were never read, or sends more after that, the kernel answers
    /// with a reset and drops the replies still in its send buffer: a peer
    /// that reads slowly never gets them. The wait for the peer is not
    /// bounded here; bound it with a timer and `abort()`.
    ///
    /// Later writes are dropped. After the peer's end of input there is no
    /// one to wait for: the connection closes once its queue is delivered,
    /// as it would anyway. Does nothing once `close()` was called.
    public func closeLingering() {
        guard current == .open else { return }
        linger()
    }

    /// Closes gracefully after answering the input that has already arrived:
    /// goes on reading (under the same backpressure) and handing what it
    /// reads to the handler, whose writes are still accepted, until it has
    /// read the bytes that were in the socket when it was called (the
    /// kernel's count of unread bytes then) or a read finds the socket
    /// empty; then does what `closeLingering()` does. A client that keeps
    /// sending cannot hold the connection open: what it sent later is not
    /// waited for.
    ///
    /// `closeLingering()` stops reading at once: a request that had arrived
    /// but was not read yet is then read and dropped, and its client gets
    /// end of input instead of a reply. Here it is answered first. Bytes
    /// that arrive after the end of input was sent are still dropped: a
    /// client that keeps sending can always have bytes in flight when the
    /// end of input leaves, and only the client can send them again.
    ///
    /// - Parameter wait: for a connection that has not received a byte yet,
    ///   how long to wait for its first bytes before the half-close: a
    ///   client (or a balancer) that has just connected usually has its
    ///   request on the way. `.zero`: no wait. A connection that has
    ///   received bytes before does not wait.
    ///
    /// Does nothing once closing has begun in any way.
    public func closeLingeringAfterInput(firstInputWithin wait: Duration = .zero) {
        guard current == .open else { return }
        current = .answering
        answerUntil = received + unreadBytes()
        if received == 0 && wait > .zero {
            awaitsFirstInput = true
            firstInputTimer = loop.schedule(after: wait) { [weak self] in self?.firstInputWaitEnded() }
        }
        // What has arrived is read now; what comes later, on readiness.
        if !readPaused { readAvailable() }
    }

    /// Closes now, dropping whatever is queued.
    public func abort() {
        finish(.closedLocally)
    }

    /// Flushes on write readiness, reads on read readiness.
    public override func handle(_ ready: Interest) {
        if ready.contains(.write) { flush() }
        guard ready.contains(.read) else { return }
        if wantsToRead {
            readAvailable()
        } else if current == .lingeringHalfClosed {
            discardInput()
        }
    }

    private var wantsToRead: Bool { current.reads && !readPaused }

    private var acceptsWrites: Bool { current.reads }

    private func readAvailable() {
        let buffer = readBuffer
        for _ in 0..<readsPerWakeup {
            switch Socket.receive(descriptor.rawValue, into: buffer) {
            case .success(.processed(0)):
                endOfInput()
                return
            case .success(.processed(let count)):
                received &+= count
                if tracksActivity { lastActivity = loop.iterationTime }
                owner?.connection(self, didRead: UnsafeMutableRawBufferPointer(rebasing: buffer[..<count]))
                if current == .answering && answeredWhatHadArrived() { return }
                // A short read drained the socket; the handler may have paused or closed us.
                if count < buffer.count {
                    if current == .answering { inputAnswered() }
                    return
                }
                if !wantsToRead { return }
            case .success(.wouldBlock):
                if current == .answering { inputAnswered() }
                return
            case .failure(let errno):
                finish(.reset(errno))
                return
            }
        }
    }

    private func flush() {
        guard current != .closed else { return }
        var failure: Errno?
        outbound.consume { pending in
            switch Socket.send(descriptor.rawValue, pending) {
            case .success(.processed(let count)):
                sent &+= count
                return count
            case .success(.wouldBlock): return 0
            case .failure(let errno):
                failure = errno
                return 0
            }
        }
        if let failure { return finish(.reset(failure)) }
        if tracksActivity { lastActivity = loop.iterationTime }
        if outbound.isEmpty {
            switch current {
            case .draining: return finish(.closedLocally)
            case .drainingAfterEndOfInput: return finish(.endOfInput)
            case .lingering: return startLingering()
            case .open, .answering, .lingeringHalfClosed, .closed: break
            }
        }
        updateInterest()
        // Reading may have resumed below the low-water mark, with input
        // already waiting: the readiness that announced it has passed.
        if current == .answering && !readPaused { readAvailable() }
    }

    /// Delivers what is queued, then half-closes and waits for the peer.
    private func linger() {
        if outbound.isEmpty { return startLingering() }
        current = .lingering
        updateInterest()
    }

    /// While answering, after a read: whether everything that had arrived is
    /// read now (then it lingers). The first bytes of a connection that
    /// awaited them set the mark anew: what has arrived by then.
    private func answeredWhatHadArrived() -> Bool {
        if awaitsFirstInput {
            awaitsFirstInput = false
            if let firstInputTimer { loop.cancel(firstInputTimer) }
            firstInputTimer = nil
            answerUntil = received + unreadBytes()
        }
        guard received >= answerUntil else { return false }
        inputAnswered()
        return true
    }

    /// The bytes in the socket not read yet; 0 if the kernel will not say.
    private func unreadBytes() -> Int {
        (try? system_unread_bytes(descriptor.rawValue).get()) ?? 0
    }

    /// While answering, a read found the socket empty: linger, unless the
    /// first bytes are still awaited.
    private func inputAnswered() {
        guard current == .answering, received > 0 || !awaitsFirstInput else { return }
        if let firstInputTimer { loop.cancel(firstInputTimer) }
        firstInputTimer = nil
        awaitsFirstInput = false
        linger()
    }

    private func firstInputWaitEnded() {
        firstInputTimer = nil
        awaitsFirstInput = false
        // Read once more: whatever arrived meanwhile is answered too.
        if current == .answering && !readPaused { readAvailable() }
    }

    /// Sends end of input after the last reply and watches for the peer's.
    private func startLingering() {
        current = .lingeringHalfClosed
        guard case .success = system_shutdown(descriptor.rawValue, ShutdownHow.write) else {
            return finish(.closedLocally)
        }
        updateInterest()
    }

    /// Drops what the peer sends after a lingering close, until its end of input.
    private func discardInput() {
        for _ in 0..<readsPerWakeup {
            switch Socket.receive(descriptor.rawValue, into: readBuffer) {
            case .success(.processed(0)): return finish(.closedLocally)
            case .success(.processed): continue
            case .success(.wouldBlock): return
            case .failure(let errno): return finish(.reset(errno))
            }
        }
    }

    private func endOfInput() {
        if outbound.isEmpty { return finish(.endOfInput) }
        current = .drainingAfterEndOfInput
        updateInterest()
    }

    /// Turns reading off above the high-water mark and on again at the low
    /// one; wants writes exactly while bytes are queued.
    private func updateInterest() {
        guard current != .closed else { return }
        if !readPaused && outbound.count >= options.highWaterMark {
            readPaused = true
        } else if readPaused && outbound.count <= options.lowWaterMark {
            readPaused = false
        }
        var interest: Interest = wantsToRead || current == .lingeringHalfClosed ? .read : []
        if !outbound.isEmpty { interest.insert(.write) }
        do { try loop.setInterest(id, interest) } catch { finish(.reset(error.errno ?? .noMemory)) }
    }

    /// Arms one timer for the moment the connection would become idle. Reads
    /// and writes only move `lastActivity`; when the timer fires early, it is
    /// armed again for the new moment, so a busy connection costs no timer
    /// operation per chunk.
    private func armIdleTimer(after delay: Duration) {
        idleTimer = loop.schedule(at: lastActivity &+ nanoseconds(delay)) { [weak self] in
            self?.idleTimerFired(delay)
        }
    }

    private func idleTimerFired(_ delay: Duration) {
        guard current != .closed else { return }
        if loop.clock.now() >= lastActivity &+ nanoseconds(delay) {
            finish(.idleTimeout)
        } else {
            armIdleTimer(after: delay)
        }
    }

    private func finish(_ reason: CloseReason) {
        guard current != .closed else { return }
        current = .closed
        if let idleTimer { loop.cancel(idleTimer) }
        idleTimer = nil
        if let firstInputTimer { loop.cancel(firstInputTimer) }
        firstInputTimer = nil
        loop.unregister(id)
        _ = system_close(descriptor.rawValue)
        descriptor = FileDescriptor(rawValue: -1)
        outbound.removeAll()
        let owner = self.owner
        self.owner = nil
        owner?.connectionDidClose(self, reason: reason)
    }
}
