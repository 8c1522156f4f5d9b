import LinuxEpoll
import Selectors
import Synchronization
import Syscalls

/// How a `GroupListener` spreads new connections over the loops of a group.
public enum Balance: Sendable, Equatable, CustomStringConvertible {
    /// One listening socket per loop, all bound to the port with
    /// `SO_REUSEPORT`; the kernel hashes each new connection (its addresses
    /// and ports) to one of them. No state is shared between the loops.
    ///
    /// What that means, measured on this project's Linux 6 machine over
    /// loopback: the spread is even for many connections (1,000 over two
    /// sockets: 520/480; over eight: 118 to 132 each) and lumpy for few
    /// long-lived ones (100 over 16 sockets, five runs: 9 to 13 on the
    /// busiest, against a mean of 6.25). A loop that stalls, or pauses
    /// accepting for want of descriptors, still receives its share, which
    /// waits in its own backlog. Closing one socket of the group alone resets
    /// the handshakes queued in it (200 connections queued over two sockets,
    /// one closed: 99 to 112 reset in three runs), unless
    /// `net.ipv4.tcp_migrate_req` is 1 (Linux 5.14 and later), which moves
    /// them to another socket: a group stops all its listeners together.
    /// `SO_REUSEPORT` lets any process of the same user join the port, so it
    /// is set only here, in group mode.
    case reusePort
    /// One listening socket, accepted from by loop 0, which hands each new
    /// connection to a loop chosen by the policy (itself included). One
    /// backlog: nothing queued is lost when one loop stops. A loop that has
    /// been busy without waiting once for longer than the group's
    /// `stallLimit` is handed nothing new while another is not.
    case acceptor(AcceptorPolicy)

    /// `reuseport`, `acceptor` (least connections) or `acceptor-round-robin`.
    public var description: String {
        switch self {
        case .reusePort: "reuseport"
        case .acceptor(.leastConnections): "acceptor"
        case .acceptor(.roundRobin): "acceptor-round-robin"
        }
    }
}

/// Which loop the acceptor hands a new connection to.
public enum AcceptorPolicy: Sendable, Equatable {
    /// The loop with the fewest connections, counting those handed to it and
    /// not yet picked up: with long-lived connections the loops differ by at
    /// most one. Ties go to the lowest index.
    case leastConnections
    /// Each loop in turn.
    case roundRobin
}

/// A TCP port served by every loop of a `LoopGroup`: the listening sockets
/// and the state the loops share to spread connections (`Balance`).
///
/// Create it on any thread before the group, then, in each loop's set-up,
/// a `TCPListener(loop:group:member:onAccept:)` for that loop's index. Each
/// loop's `onAccept` is called on its own thread with the connections it is
/// to serve. The sockets are bound here, in loop order, so that a port in use
/// fails before any thread starts, and port 0 gives every loop the same port.
///
/// The loops share only what is touched once per connection: with
/// `maxConnections`, an atomic count of open connections; under `.acceptor`,
/// each loop's counts and its queue of hand-offs. Nothing per message.
public final class GroupListener: Sendable {
    /// How connections are spread.
    public let balance: Balance
    /// How many loops serve the port.
    public let loops: Int
    /// The bound address, with the real port when 0 was asked for.
    public let localAddress: Endpoint
    /// Each loop's listener options (`maxConnections` counts over the whole group).
    public let options: TCPListener.Options
    /// Under `.acceptor`: a loop busy without waiting for longer than this is
    /// handed no new connection while another loop is not.
    public let stallLimit: Duration

    /// The listening sockets: one per loop under `.reusePort`, one (loop 0's)
    /// under `.acceptor`. Each is taken once, by its loop's listener.
    private let sockets: Lock<[CInt?]>
    /// Each loop's share of the state, in loop order.
    let members: [Member]
    /// Connections open over the whole group, against `options.maxConnections`.
    private let open = Atomic<Int>(0)

    /// What one loop of the group shares with the others.
    final class Member: Sendable {
        /// Connections handed to this loop (refused ones excluded).
        let given = Atomic<Int>(0)
        /// Of those, how many this loop has closed.
        let closed = Atomic<Int>(0)
        /// Descriptors handed to this loop and not yet picked up; `nil` once
        /// the loop stopped taking them.
        let inbox = Lock<[CInt]?>([])
        /// Written when the inbox goes from empty to non-empty.
        let eventFD: EventFD
        /// The loop's handle, for the stall check; set by its listener.
        let handle = Lock<EventLoopHandle?>(nil)

        init() throws(EpollError) { eventFD = try EventFD() }

        /// Connections this loop serves or is about to.
        var load: Int { given.load(ordering: .relaxed) - closed.load(ordering: .relaxed) }

        /// Queues `client` for this loop; false if it takes no more.
        func hand(_ client: CInt) -> Bool {
            let outcome = inbox.withLock { queue -> Bool? in
                guard queue != nil else { return nil }
                queue!.append(client)
                return queue!.count == 1
            }
            guard let first = outcome else { return false }
            if first { eventFD.signal() }
            return true
        }

        /// Takes the queued descriptors into `batch` (emptied first).
        func take(into batch: inout [CInt], closing: Bool) {
            batch.removeAll(keepingCapacity: true)
            inbox.withLock { queue in
                if queue != nil { swap(&batch, &queue!) }
                if closing { queue = nil }
            }
        }
    }

    /// Binds the port for `loops` loops.
    ///
    /// - Parameters:
    ///   - host: a numeric IPv4 or IPv6 address.
    ///   - port: the port; 0 picks a free one, the same for every loop.
    ///   - loops: the group's size; at least 1.
    ///   - balance: how connections are spread (see `Balance`).
    ///   - options: each listener's options; `reusePort` is set by `balance`,
    ///     and `maxConnections` bounds the open connections of all loops together.
    ///   - stallLimit: under `.acceptor`, how long a loop may be busy without
    ///     waiting before it is handed nothing new (100 ms by default).
    /// - Throws: `SocketError` for a bad address, a port in use, or a
    ///   descriptor that cannot be made.
    public init(
        host: String,
        port: UInt16,
        loops: Int,
        balance: Balance,
        options: TCPListener.Options = TCPListener.Options(),
        stallLimit: Duration = .milliseconds(100)
    ) throws(SocketError) {
        precondition(loops >= 1, "a GroupListener needs at least one loop")
        guard let address = SocketAddress(host: host, port: port) else {
            throw SocketError(
                "parse the address", .invalidArgument, address: "\(host) (not a numeric IPv4 or IPv6 address)")
        }
        self.balance = balance
        self.loops = loops
        self.options = options
        self.stallLimit = stallLimit
        let count = balance == .reusePort ? loops : 1
        var bound: [CInt] = []
        func closeAll() { for fd in bound { _ = system_close(fd) } }
        var next = address
        for _ in 0..<count {
            do {
                bound.append(try Socket.listen(on: next, backlog: options.backlog, reusePort: balance == .reusePort))
            } catch {
                closeAll()
                throw error
            }
            // Port 0 binds once; the others join the port it picked.
            if case .success(let actual) = system_getsockname(bound[0]) { next = actual }
        }
        switch system_getsockname(bound[0]) {
        case .success(let actual): localAddress = Endpoint(host: actual.host, port: actual.port)
        case .failure: localAddress = Endpoint(host: host, port: port)
        }
        var members: [Member] = []
        for _ in 0..<loops {
            do { members.append(try Member()) } catch {
                closeAll()
                throw SocketError(
                    "create a hand-off eventfd for", error.errno ?? .noMemory, address: address.description)
            }
        }
        self.members = members
        sockets = Lock(bound.map { Optional($0) } + Array(repeating: nil, count: loops - count))
    }

    deinit {
        // Sockets no loop took.
        sockets.withLock { for case let fd? in $0 { _ = system_close(fd) } }
    }

    /// Connections each loop serves now, or has been handed and not yet
    /// picked up, in loop order. Safe from any thread.
    public var loads: [Int] { members.map(\.load) }

    /// Connections given to each loop since the start (refused ones
    /// excluded), in loop order: they add up to every connection served.
    /// Safe from any thread.
    public var givenCounts: [Int] { members.map { $0.given.load(ordering: .relaxed) } }

    /// Takes loop `member`'s listening socket, if it has one (and it was not
    /// taken before).
    func takeSocket(_ member: Int) -> CInt? {
        sockets.withLock { sockets in
            defer { sockets[member] = nil }
            return sockets[member]
        }
    }

    /// Counts one more open connection; false if `maxConnections` are open.
    func admit() -> Bool {
        guard let limit = options.maxConnections else { return true }
        let before = open.add(1, ordering: .relaxed).oldValue
        if before < limit { return true }
        open.subtract(1, ordering: .relaxed)
        return false
    }

    /// A connection that loop `member` served has closed.
    func connectionClosed(on member: Int) {
        if options.maxConnections != nil { open.subtract(1, ordering: .relaxed) }
        members[member].closed.add(1, ordering: .relaxed)
    }
}
