import CEpollShim
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
    @exclusivity(unchecked) private var readPaused = false
    @exclusivity(unchecked) private var inputEnded = false
    @exclusivity(unchecked) private var closeWhenFlushed = false
    @exclusivity(unchecked) private var lingerWhenFlushed = false
    @exclusivity(unchecked) private var lingering = false
    // Activity is only read by the idle timer: without one, reads and writes
    // skip the loop's clock (a call through the context protocol per chunk).
    private let tracksActivity: Bool
    @exclusivity(unchecked) private var id: SourceID?
    // Copies of `options.readsPerWakeup` and of the loop's read buffer, kept
    // with the hot state for the same reason.
    private let readsPerWakeup: Int
    private let readBuffer: UnsafeMutableRawBufferPointer
    @exclusivity(unchecked) private var owner: TCPConnectionHandler?
    @exclusivity(unchecked) private var outbound = OutboundBuffer()
    // unowned(unsafe): the loop holds every registered source, so it outlives
    // this connection's use of it; a checked reference would cost an atomic
    // retain and release on every chunk.
    private unowned(unsafe) let loop: any EventLoopContext
    private let options: Options
    @exclusivity(unchecked) private var lastActivity: UInt64
    private var idleTimer: TimerID?

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

    /// Whether reading is paused because the peer is not reading its replies.
    public var isReadingPaused: Bool { readPaused }

    /// Whether the connection is closed.
    public var isClosed: Bool { id == nil }

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
        self.lastActivity = loop.iterationTime
        self.tracksActivity = options.idleTimeout != nil
        self.readBuffer = loop.readBuffer
        self.readsPerWakeup = options.readsPerWakeup
        do {
            id = try loop.register(self, fileDescriptor: fileDescriptor, interest: .read)
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

    /// Sends `bytes` now, queueing what the kernel does not take. Bytes
    /// written after `close()` are dropped.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard id != nil, !bytes.isEmpty else { return }
        if outbound.isEmpty {
            switch Socket.send(descriptor.rawValue, bytes) {
            case .success(.processed(let sent)):
                if tracksActivity { lastActivity = loop.iterationTime }
                if sent == bytes.count { return }
                outbound.append(UnsafeRawBufferPointer(rebasing: bytes[sent...]))
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
    public func close() {
        guard id != nil else { return }
        if outbound.isEmpty {
            finish(.closedLocally)
        } else {
            closeWhenFlushed = true
            updateInterest()
        }
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
    public func closeLingering() {
        guard id != nil, !lingering else { return }
        lingerWhenFlushed = !inputEnded
        if outbound.isEmpty && lingerWhenFlushed { return startLingering() }
        close()
    }

    /// Closes now, dropping whatever is queued.
    public func abort() {
        finish(.closedLocally)
    }

    /// Flushes on write readiness, reads on read readiness.
    public func handle(_ ready: Interest) {
        if ready.contains(.write) { flush() }
        if ready.contains(.read) && lingering { discardInput() }
        if ready.contains(.read) && wantsToRead { readAvailable() }
    }

    private var wantsToRead: Bool { id != nil && !readPaused && !inputEnded && !closeWhenFlushed }

    private func readAvailable() {
        let buffer = readBuffer
        for _ in 0..<readsPerWakeup {
            switch Socket.receive(descriptor.rawValue, into: buffer) {
            case .success(.processed(0)):
                endOfInput()
                return
            case .success(.processed(let count)):
                if tracksActivity { lastActivity = loop.iterationTime }
                owner?.connection(self, didRead: UnsafeMutableRawBufferPointer(rebasing: buffer[..<count]))
                // A short read drained the socket; the handler may have paused or closed us.
                if count < buffer.count || !wantsToRead { return }
            case .success(.wouldBlock):
                return
            case .failure(let errno):
                finish(.reset(errno))
                return
            }
        }
    }

    private func flush() {
        guard id != nil else { return }
        var failure: Errno?
        outbound.consume { pending in
            switch Socket.send(descriptor.rawValue, pending) {
            case .success(.processed(let sent)): return sent
            case .success(.wouldBlock): return 0
            case .failure(let errno):
                failure = errno
                return 0
            }
        }
        if let failure { return finish(.reset(failure)) }
        if tracksActivity { lastActivity = loop.iterationTime }
        if outbound.isEmpty && closeWhenFlushed && lingerWhenFlushed && !inputEnded { return startLingering() }
        if outbound.isEmpty && (closeWhenFlushed || inputEnded) {
            return finish(inputEnded ? .endOfInput : .closedLocally)
        }
        updateInterest()
    }

    /// Sends end of input after the last reply and watches for the peer's.
    private func startLingering() {
        lingering = true
        closeWhenFlushed = true
        guard case .success = system_shutdown(descriptor.rawValue, CInt(SHUT_WR)) else {
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
        inputEnded = true
        if outbound.isEmpty { finish(.endOfInput) } else { updateInterest() }
    }

    /// Turns reading off above the high-water mark and on again at the low
    /// one; wants writes exactly while bytes are queued.
    private func updateInterest() {
        guard let id else { return }
        if !readPaused && outbound.count >= options.highWaterMark {
            readPaused = true
        } else if readPaused && outbound.count <= options.lowWaterMark {
            readPaused = false
        }
        var interest: Interest = wantsToRead || lingering ? .read : []
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
        guard id != nil else { return }
        if loop.clock.now() >= lastActivity &+ nanoseconds(delay) {
            finish(.idleTimeout)
        } else {
            armIdleTimer(after: delay)
        }
    }

    private func finish(_ reason: CloseReason) {
        guard let id else { return }
        self.id = nil
        if let idleTimer { loop.cancel(idleTimer) }
        idleTimer = nil
        loop.unregister(id)
        _ = system_close(descriptor.rawValue)
        descriptor = FileDescriptor(rawValue: -1)
        outbound.removeAll()
        let owner = self.owner
        self.owner = nil
        owner?.connectionDidClose(self, reason: reason)
    }
}
