import Selectors
import SystemPackage
import Syscalls

/// A listening TCP socket on an event loop: accepts connections and hands
/// each new descriptor (non-blocking, close-on-exec) to `onAccept`.
///
/// ```swift
/// let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { fd in
///     _ = try? TCPConnection(loop: loop, fileDescriptor: fd, handler: handler)
/// }
/// print("listening on port \(listener.localAddress.port)")
/// ```
///
/// ## Running out of descriptors
///
/// When `accept4` fails with `EMFILE` or `ENFILE` the pending connection
/// stays in the kernel's backlog, so the socket stays readable: a naive loop
/// would spin at 100 % CPU. The listener instead stops watching for new
/// connections and tries again after a back-off (10 ms, doubling to 1 s),
/// or at once when `resumeAccepting()` says a descriptor was freed. The
/// connected clients are served all along.
public final class TCPListener: EventSource {
    /// How the listener behaves.
    public struct Options: Sendable {
        /// The kernel's queue of connections not yet accepted.
        public var backlog: CInt = 511
        /// `SO_REUSEPORT`: let several processes or loops share the port.
        public var reusePort = false
        /// At most this many accepts per wake-up, so a flood of connections
        /// cannot starve the connected clients.
        public var acceptsPerWakeup = 64
        /// The first pause after running out of descriptors.
        public var initialBackoff: Duration = .milliseconds(10)
        /// The longest pause after running out of descriptors.
        public var maximumBackoff: Duration = .seconds(1)
        /// At most this many connections open at once: one accepted beyond it
        /// is closed at once (`refusedCount`), never handed to `onAccept`.
        /// A connection counts as open from `onAccept` until its owner calls
        /// `connectionDidClose()`. `nil`: no limit but the descriptor limit.
        public var maxConnections: Int?
        /// `TCP_NODELAY` on each accepted connection: send small replies at
        /// once instead of holding them while an earlier one is unacknowledged
        /// (Nagle's algorithm), which with a peer's delayed ACK can stall a
        /// request-reply exchange for tens of milliseconds.
        public var noDelay = true

        /// The defaults: backlog 511, no `SO_REUSEPORT`, 64 accepts per wake-up.
        public init() {}
    }

    private unowned let loop: any EventLoopContext
    private let options: Options
    private let onAccept: (FileDescriptor) -> Void
    private var descriptor: CInt
    private var id: SourceID?
    private var backoff: Duration
    private var resumeTimer: TimerID?

    /// The bound address, with the real port when 0 was asked for.
    public let localAddress: Endpoint

    /// How many connections were accepted, refused ones included.
    public private(set) var acceptedCount = 0

    /// How many accepted connections were closed at once because
    /// `maxConnections` were open.
    public private(set) var refusedCount = 0

    /// How many connections handed to `onAccept` are open: not yet reported
    /// closed with `connectionDidClose()`.
    public private(set) var openCount = 0

    /// How many times accepting was paused for want of descriptors.
    public private(set) var pauseCount = 0

    /// Whether accepting is paused for want of descriptors.
    public var isPaused: Bool { resumeTimer != nil }

    /// Binds, listens and starts accepting on `loop`.
    ///
    /// - Parameters:
    ///   - loop: the loop that watches the socket and calls `onAccept`. The
    ///     listener holds it `unowned`: the loop must outlive it.
    ///   - host: a numeric IPv4 or IPv6 address (`127.0.0.1`, `::1`, `0.0.0.0`).
    ///   - port: the port; 0 picks a free one (see `localAddress`).
    ///   - options: the backlog, `SO_REUSEPORT`, accepts per wake-up, the
    ///     back-off, the connection limit and `TCP_NODELAY`; see `Options`.
    ///   - onAccept: called on the loop's thread with each new connection's
    ///     descriptor, which it then owns. Call `connectionDidClose()` when
    ///     that connection is closed.
    /// - Throws: `SocketError` for a bad address, a port in use, or any other
    ///   refusal, with the address in its message.
    public init(
        loop: any EventLoopContext,
        host: String,
        port: UInt16,
        options: Options = Options(),
        onAccept: @escaping (FileDescriptor) -> Void
    ) throws(SocketError) {
        guard let address = SocketAddress(host: host, port: port) else {
            throw SocketError(
                "parse the address", .invalidArgument, address: "\(host) (not a numeric IPv4 or IPv6 address)")
        }
        self.loop = loop
        self.options = options
        self.onAccept = onAccept
        self.backoff = options.initialBackoff
        descriptor = try Socket.listen(on: address, backlog: options.backlog, reusePort: options.reusePort)
        switch system_getsockname(descriptor) {
        case .success(let bound): localAddress = Endpoint(host: bound.host, port: bound.port)
        case .failure: localAddress = Endpoint(host: host, port: port)
        }
        super.init()
        do {
            id = try loop.register(self, fileDescriptor: FileDescriptor(rawValue: descriptor), interest: .read)
        } catch {
            _ = system_close(descriptor)
            descriptor = -1
            throw SocketError("watch", error.errno ?? .noMemory, address: address.description)
        }
    }

    deinit {
        // Still open only if the loop let go of it without `close()` (the
        // loop was released): the loop is gone, the socket need not be.
        if descriptor >= 0 { _ = system_close(descriptor) }
    }

    /// Accepts up to `acceptsPerWakeup` connections.
    public override func handle(_ ready: Interest) {
        for _ in 0..<options.acceptsPerWakeup {
            switch Socket.accept(descriptor) {
            case .success(.processed(let client)):
                acceptedCount += 1
                backoff = options.initialBackoff
                if let limit = options.maxConnections, openCount >= limit {
                    refusedCount += 1
                    _ = system_close(client)
                    continue
                }
                openCount += 1
                if options.noDelay { _ = system_setsockopt(client, .noDelay, 1) }
                onAccept(FileDescriptor(rawValue: client))
            case .success(.wouldBlock):
                return
            case .failure(let errno) where Self.isOutOfDescriptors(errno):
                pause()
                return
            case .failure:
                // ECONNABORTED, EPROTO, EPERM (firewall): that one connection
                // is gone; the next may be fine.
                continue
            }
        }
    }

    /// Tells the listener that a connection it handed out is closed: one
    /// fewer counts against `maxConnections`, and accepting resumes at once if
    /// it was paused for want of descriptors.
    public func connectionDidClose() {
        openCount = max(openCount - 1, 0)
        resumeAccepting()
    }

    /// Resumes accepting now if it was paused for want of descriptors.
    public func resumeAccepting() {
        guard let timer = resumeTimer else { return }
        loop.cancel(timer)
        resume()
    }

    /// Accepts every connection the kernel has already queued, handing each
    /// to `onAccept` as `handle(_:)` does (within `maxConnections`), until
    /// `accept4` finds the queue empty; then closes like `close()`. Later
    /// calls do nothing.
    ///
    /// `close()` alone makes the kernel reset the connections still queued:
    /// their handshakes are complete, so their clients (or a balancer) count
    /// them as connected and then see a reset, which a balancer does not
    /// retry elsewhere. Accepted here, they are served like the others.
    /// The queue is emptied in one go, without the per-wake-up bound, but
    /// with at most twice the backlog accepted, so that a flood cannot hold
    /// the loop. A handshake that completes between the last accept and the
    /// close is still reset; a connection attempted after the close is
    /// refused. Out of descriptors, the rest of the queue is reset.
    public func acceptQueuedThenClose() {
        guard id != nil else { return }
        var budget = 2 * Int(max(options.backlog, 1)) + options.acceptsPerWakeup
        accepting: while budget > 0 {
            budget -= 1
            switch Socket.accept(descriptor) {
            case .success(.processed(let client)):
                acceptedCount += 1
                if let limit = options.maxConnections, openCount >= limit {
                    refusedCount += 1
                    _ = system_close(client)
                    continue
                }
                openCount += 1
                if options.noDelay { _ = system_setsockopt(client, .noDelay, 1) }
                onAccept(FileDescriptor(rawValue: client))
            case .success(.wouldBlock):
                break accepting
            case .failure(let errno) where errno == .connectionAbort:
                continue  // that connection is gone; the next may be fine
            case .failure:
                break accepting
            }
        }
        close()
    }

    /// Stops listening and closes the socket; later calls do nothing.
    public func close() {
        guard let id else { return }
        if let timer = resumeTimer { loop.cancel(timer) }
        resumeTimer = nil
        loop.unregister(id)
        _ = system_close(descriptor)
        descriptor = -1
        self.id = nil
    }

    private static func isOutOfDescriptors(_ errno: Errno) -> Bool {
        errno == .tooManyOpenFiles || errno == .tooManyOpenFilesInSystem || errno == .noBufferSpace
            || errno == .noMemory
    }

    private func pause() {
        guard let id, resumeTimer == nil else { return }
        pauseCount += 1
        try? loop.setInterest(id, [])
        resumeTimer = loop.schedule(after: backoff) { [weak self] in self?.resume() }
        backoff = min(backoff * 2, options.maximumBackoff)
    }

    private func resume() {
        resumeTimer = nil
        guard let id else { return }
        try? loop.setInterest(id, .read)
    }
}
