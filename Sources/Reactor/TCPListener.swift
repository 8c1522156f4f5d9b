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
    // The listening socket; under `.acceptor`, the other loops' listeners
    // watch their hand-off eventfd instead and have none (-1).
    private var descriptor: CInt
    private var id: SourceID?
    private var backoff: Duration
    private var resumeTimer: TimerID?
    private let role: Role
    // Under `.acceptor`, loop 0's: the next loop in turn, and each loop's
    // handle for the stall check (once every loop has set its own).
    private var nextInTurn = 0
    private var memberHandles: [EventLoopHandle] = []
    // A worker's batch of hand-offs, reused.
    private var batch: [CInt] = []
    // `refuseNewConnections()` was called: a drain is under way.
    private var refusingNew = false

    /// What this listener is in its group, if any.
    private enum Role {
        /// Alone: its own socket, its own limit.
        case standalone
        /// One loop of a group, with its own socket (`.reusePort`).
        case reusePort(GroupListener, member: Int)
        /// Loop 0 under `.acceptor`: accepts for every loop.
        case acceptor(GroupListener)
        /// Another loop under `.acceptor`: serves what loop 0 hands it.
        case worker(GroupListener, member: Int)

        var group: GroupListener? {
            switch self {
            case .standalone: nil
            case .reusePort(let group, _), .acceptor(let group), .worker(let group, _): group
            }
        }

        var member: Int {
            switch self {
            case .standalone, .acceptor: 0
            case .reusePort(_, let member), .worker(_, let member): member
            }
        }
    }

    /// The bound address, with the real port when 0 was asked for.
    public let localAddress: Endpoint

    /// How many connections were accepted, refused ones included. In a
    /// group, the connections this loop was given to serve (and those it
    /// refused): under `.acceptor`, loop 0 does not count those it handed to
    /// other loops (see `handedOffCount`), so the loops' counts add up.
    public private(set) var acceptedCount = 0

    /// Under `.acceptor`, on loop 0: the connections it handed to other loops.
    public private(set) var handedOffCount = 0

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
        role = .standalone
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

    /// Serves loop `member`'s part of `group` on `loop`, its loop: under
    /// `.reusePort` it accepts from its own socket; under `.acceptor`, loop 0
    /// accepts and hands connections out, and every other loop serves what it
    /// is handed. Each connection this loop is to serve reaches `onAccept`,
    /// on this loop's thread. Call it in `LoopGroup`'s set-up, once per loop.
    ///
    /// The group's `options` apply, and its `maxConnections` counts the open
    /// connections of every loop together.
    ///
    /// - Throws: `SocketError` if the socket or hand-off eventfd cannot be
    ///   watched, or `member` was already served.
    public init(
        loop: any EventLoopContext,
        group: GroupListener,
        member: Int,
        onAccept: @escaping (FileDescriptor) -> Void
    ) throws(SocketError) {
        precondition(member >= 0 && member < group.loops, "member \(member) of a group of \(group.loops)")
        self.loop = loop
        self.options = group.options
        self.onAccept = onAccept
        self.backoff = group.options.initialBackoff
        localAddress = group.localAddress
        let watched: CInt
        switch group.balance {
        case .reusePort:
            role = .reusePort(group, member: member)
            descriptor = group.takeSocket(member) ?? -1
            watched = descriptor
        case .acceptor where member == 0:
            role = .acceptor(group)
            descriptor = group.takeSocket(0) ?? -1
            watched = descriptor
        case .acceptor:
            role = .worker(group, member: member)
            descriptor = -1
            watched = group.members[member].eventFD.fileDescriptor.rawValue
        }
        super.init()
        guard watched >= 0 else {
            throw SocketError("serve loop \(member) of", .invalidArgument, address: "\(localAddress) (taken before)")
        }
        group.members[member].handle.withLock { $0 = loop.handle }
        do {
            id = try loop.register(self, fileDescriptor: FileDescriptor(rawValue: watched), interest: .read)
        } catch {
            if descriptor >= 0 { _ = system_close(descriptor) }
            descriptor = -1
            throw SocketError("watch", error.errno ?? .noMemory, address: "\(localAddress)")
        }
    }

    deinit {
        // Still open only if the loop let go of it without `close()` (the
        // loop was released): the loop is gone, the socket need not be.
        if descriptor >= 0 { _ = system_close(descriptor) }
        // Hand-offs never picked up: nobody will serve them.
        if case .worker(let group, let member) = role, id != nil {
            group.members[member].take(into: &batch, closing: true)
            for client in batch { _ = system_close(client) }
        }
    }

    /// Accepts up to `acceptsPerWakeup` connections (under `.acceptor`, on
    /// the other loops: takes what loop 0 handed over).
    public override func handle(_ ready: Interest) {
        if case .worker(let group, let member) = role { return takeHandOffs(group.members[member], closing: false) }
        for _ in 0..<options.acceptsPerWakeup {
            switch Socket.accept(descriptor) {
            case .success(.processed(let client)):
                backoff = options.initialBackoff
                if options.noDelay { _ = system_setsockopt(client, .noDelay, 1) }
                route(client)
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

    /// Serves a new connection here, hands it to another loop, or refuses it.
    private func route(_ client: CInt) {
        guard case .acceptor(let group) = role, group.loops > 1 else { return serve(client) }
        guard group.admit() else {
            acceptedCount += 1
            refusedCount += 1
            _ = system_close(client)
            return
        }
        let target = choose(in: group)
        if target != 0 && group.members[target].hand(client) {
            group.members[target].given.add(1, ordering: .relaxed)
            handedOffCount += 1
        } else {
            group.members[0].given.add(1, ordering: .relaxed)
            start(client)
        }
    }

    /// Counts and starts (or refuses) a connection this loop serves.
    private func serve(_ client: CInt) {
        let admitted: Bool
        switch role {
        case .standalone: admitted = options.maxConnections.map { openCount < $0 } ?? true
        case .reusePort(let group, let member):
            admitted = group.admit()
            if admitted { group.members[member].given.add(1, ordering: .relaxed) }
        case .acceptor, .worker: admitted = true  // admitted by the acceptor
        }
        guard admitted else {
            acceptedCount += 1
            refusedCount += 1
            _ = system_close(client)
            return
        }
        start(client)
    }

    private func start(_ client: CInt) {
        acceptedCount += 1
        openCount += 1
        onAccept(FileDescriptor(rawValue: client))
    }

    /// Takes the connections loop 0 handed to this loop; when `closing`,
    /// takes the last of them and accepts no more.
    private func takeHandOffs(_ member: GroupListener.Member, closing: Bool) {
        if !closing { _ = member.eventFD.reset() }
        member.take(into: &batch, closing: closing)
        for client in batch { start(client) }
        batch.removeAll(keepingCapacity: true)
    }

    /// The loop the acceptor hands the next connection to: by the policy,
    /// among the loops not stalled (all of them, if every one is).
    private func choose(in group: GroupListener) -> Int {
        if memberHandles.count < group.loops {
            memberHandles = group.members.compactMap { $0.handle.withLock { $0 } }
            if memberHandles.count < group.loops { return 0 }
        }
        let now = loop.clock.now()
        var best = -1
        var bestLoad = Int.max
        let policy: AcceptorPolicy
        if case .acceptor(let chosen) = group.balance { policy = chosen } else { policy = .leastConnections }
        for pass in 0..<2 {
            for step in 0..<group.loops {
                let index = policy == .roundRobin ? (nextInTurn + step) % group.loops : step
                // Loop 0 runs this code: it is not stalled.
                if pass == 0 && index != 0
                    && memberHandles[index].isStalled(longerThan: group.stallLimit, now: now)
                {
                    continue
                }
                if policy == .roundRobin {
                    nextInTurn = (index + 1) % group.loops
                    return index
                }
                let load = group.members[index].load
                if load < bestLoad {
                    best = index
                    bestLoad = load
                }
            }
            if best >= 0 { return best }
        }
        return 0
    }

    /// Tells the listener that a connection it handed out is closed: one
    /// fewer counts against `maxConnections`, and accepting resumes at once if
    /// it was paused for want of descriptors.
    public func connectionDidClose() {
        openCount = max(openCount - 1, 0)
        if let group = role.group { group.connectionClosed(on: role.member) }
        resumeAccepting()
    }

    /// Resumes accepting now if it was paused for want of descriptors.
    public func resumeAccepting() {
        guard let timer = resumeTimer else { return }
        loop.cancel(timer)
        resume()
    }

    /// Begins a drain: no new connection is let in, and every connection
    /// whose handshake had begun is accepted and handed on as `handle(_:)`
    /// does (within `maxConnections`; under `.acceptor`, to the loop the
    /// policy picks). Call `close()` when the drain is over. Later calls do
    /// nothing. Under `.acceptor`, another loop's listener has no socket: it
    /// closes at once (see `close()`).
    ///
    /// A socket filter makes the kernel drop every SYN that would open a new
    /// connection from now on: such a client retransmits it (after 1 s) and
    /// then meets the closed port, which a balancer retries elsewhere. The
    /// connections already queued are accepted now, until `accept4` finds
    /// the queue empty; a handshake still under way completes, and is
    /// accepted on the listener's readiness, as long as it is open.
    /// `close()` alone would make the kernel reset both kinds: their clients
    /// (or a balancer) count them as connected, then see a reset, which a
    /// balancer does not retry. Without the filter (a kernel that refuses
    /// it), the listener accepts what is queued now and closes at once.
    public func refuseNewConnections() {
        guard id != nil, !refusingNew else { return }
        if case .worker = role { return close() }
        refusingNew = true
        let filtered: Bool
        if case .success = system_drop_new_connections(descriptor) { filtered = true } else { filtered = false }
        acceptQueued()
        if !filtered { close() }
    }

    /// Accepts every connection queued now, in one go (see `refuseNewConnections()`),
    /// then closes. Later calls do nothing.
    public func acceptQueuedThenClose() {
        guard id != nil else { return }
        if case .worker = role { return close() }
        acceptQueued()
        close()
    }

    /// Accepts until `accept4` finds the queue empty, without the per-wake-up
    /// bound but with at most twice the backlog, so that a flood cannot hold
    /// the loop. Out of descriptors, the rest stays queued.
    private func acceptQueued() {
        var budget = 2 * Int(max(options.backlog, 1)) + options.acceptsPerWakeup
        accepting: while budget > 0 {
            budget -= 1
            switch Socket.accept(descriptor) {
            case .success(.processed(let client)):
                if options.noDelay { _ = system_setsockopt(client, .noDelay, 1) }
                route(client)
            case .success(.wouldBlock):
                break accepting
            case .failure(let errno) where errno == .connectionAbort:
                continue  // that connection is gone; the next may be fine
            case .failure:
                break accepting
            }
        }
    }

    /// Stops listening and closes the socket; later calls do nothing. Under
    /// `.acceptor`, another loop's listener instead takes what loop 0 has
    /// handed it so far (`onAccept` sees those) and takes no more: loop 0
    /// serves itself what it would have handed this one.
    public func close() {
        guard let id else { return }
        if let timer = resumeTimer { loop.cancel(timer) }
        resumeTimer = nil
        loop.unregister(id)
        self.id = nil
        if case .worker(let group, let member) = role {
            takeHandOffs(group.members[member], closing: true)
        } else {
            _ = system_close(descriptor)
            descriptor = -1
        }
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
