import LinuxEpoll
import Syscalls
import SystemPackage

/// The bookkeeping of the connect phase: which connections wait to connect,
/// which wait to retry, and which source address new sockets bind to. How
/// many connect, probe or failed is in `ConnectionCounts`.
///
/// Connects go out in bounded batches so that they never overflow the
/// server's accept queue: a connect completes as soon as the kernel has queued
/// the connection, long before the server accepts it, and a connection that
/// finds the queue full is dropped and retransmitted for seconds (1 + 2 + 4 +
/// 8 s). In a closed-loop run each new connection therefore sends one message
/// at once, its probe, and counts against `maxInFlight` until the reply comes
/// back: only then is it certain that the server accepted it. At most
/// `maxInFlight` connections are ever connecting or probing
/// (`ConnectionCounts.outstanding`), fewer than upper-echo's backlog of 511.
struct ConnectQueue {
    static let maxInFlight = 256
    /// A refused or timed-out connect is tried this many times in all.
    static let maxAttempts = 4
    /// How often connect time-outs and retries are checked.
    static let sweepInterval: Int64 = 20_000_000

    let target: SocketAddress
    /// Whether source addresses of 127.0.0.0/8 beyond 127.0.0.1 may be used
    /// once the first runs out of ephemeral ports: only for an IPv4 loopback
    /// target, which every loopback source reaches.
    let rotatesSources: Bool
    /// The source address new sockets bind to: 0 binds nothing (the kernel
    /// picks 127.0.0.1), `n` binds 127.0.0.1 + n.
    private(set) var current = 0
    private var currentAddress: SocketAddress?
    private var pending: [Int]
    private var head = 0
    var retrying: [Int] = []
    var nextSweep: Int64 = 0

    /// Queues connections `0..<connections` to `target`.
    init(connections: Int, target: SocketAddress) {
        self.target = target
        rotatesSources = target.family == AddressFamily.ipv4 && target.host.hasPrefix("127.")
        pending = Array(0..<connections)
    }

    /// The next connection to connect, first come first served.
    mutating func popPending() -> Int? {
        guard head < pending.count else { return nil }
        head += 1
        return pending[head - 1]
    }

    /// Queues `index` to connect again as soon as there is room.
    mutating func push(_ index: Int) {
        // Connections replaced while running come back again and again:
        // reuse the space of those already popped.
        if head == pending.count {
            pending.removeAll(keepingCapacity: true)
            head = 0
        }
        pending.append(index)
    }

    /// The address to bind a new socket to, if any.
    var sourceAddress: SocketAddress? { currentAddress }

    /// Moves new sockets to the next loopback source address, after `source`
    /// ran out of ephemeral ports. Returns the new address, or `nil` if there
    /// is none or another connection moved on already.
    mutating func rotate(after source: Int) -> String? {
        guard rotatesSources, source == current, current < 0xFF_FFFD else { return nil }
        current += 1
        let value = UInt32(0x7F00_0001) + UInt32(current)
        let host = "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
        currentAddress = SocketAddress(host: host, port: 0)
        return host
    }

    /// How long to wait before attempt `attempt + 1`: 50, 100, 200 ms.
    static func retryDelay(afterAttempt attempt: Int) -> Int64 {
        50_000_000 << Int64(max(0, min(attempt - 1, 6)))
    }

    /// Whether a connect that failed with `errno` is worth trying again.
    static func isRetriable(_ errno: Errno) -> Bool {
        errno == .connectionRefused || errno == .timedOut || errno == .resourceTemporarilyUnavailable
            || errno == .connectionReset || errno == .connectionAbort
    }
}

extension LoadLoop {
    /// Opens sockets for queued connections while fewer than `maxInFlight`
    /// connects and probes are in flight; starts the run once every
    /// connection is established or given up.
    mutating func startConnects() {
        // Later, only connections that are replaced (--reconnect,
        // --connection-lifetime) connect again.
        guard phase == .connecting || (phase != .done && plan.replacesConnections) else { return }
        while counts.outstanding < ConnectQueue.maxInFlight, let index = connector.popPending() {
            openSocket(index)
        }
        if phase == .connecting && counts.connectsSettled { beginRunning() }
    }

    /// Creates a non-blocking socket for connection `index` and starts its connect.
    private mutating func openSocket(_ index: Int) {
        connections[index].generation &+= 1
        connections[index].connectAttempts += 1
        connections[index].source = connector.current
        let type = SocketType.stream | SocketType.nonBlocking | SocketType.closeOnExec
        let fd: CInt
        switch system_socket(connector.target.family, type) {
        case .success(let value): fd = value
        case .failure(let errno):
            giveUp(index, "socket: \(errno)")
            return
        }
        connections[index].fd = fd
        _ = system_setsockopt(fd, .noDelay, 1)
        if let source = connector.sourceAddress {
            // Leave the port to connect, which may share it with other
            // destinations, instead of reserving one at bind.
            _ = system_setsockopt(fd, .bindAddressNoPort, 1)
            if case .failure(let errno) = system_bind(fd, source) {
                connectFailed(index, errno)
                return
            }
        }
        switch system_connect(fd, connector.target) {
        case .success:
            established(index, registered: false)
        case .failure(let errno) where errno == .nowInProgress:
            do { try epoll.register(fd, events: .out, userData: token(index)) } catch {
                giveUp(index, "epoll_ctl: \(error)")
                return
            }
            move(index, to: .connecting)
            connections[index].deadline = now + plan.connectTimeoutNanoseconds
        case .failure(let errno):
            connectFailed(index, errno)
        }
    }

    /// A connect in flight reported writable: it succeeded or failed.
    mutating func finishConnect(_ index: Int) {
        switch system_getsockopt(connections[index].fd, .error) {
        case .success(0): established(index, registered: true)
        case .success(let code): connectFailed(index, Errno(rawValue: code))
        case .failure(let errno): connectFailed(index, errno)
        }
    }

    private mutating func established(_ index: Int, registered: Bool) {
        let fd = connections[index].fd
        do {
            if registered {
                try epoll.modify(fd, events: .in, userData: token(index))
            } else {
                try epoll.register(fd, events: .in, userData: token(index))
            }
        } catch {
            giveUp(index, "epoll_ctl: \(error)")
            return
        }
        if plan.rate == nil {
            move(index, to: .probing)
            connections[index].deadline = now + plan.connectTimeoutNanoseconds
            sendProbe(index)
        } else {
            // Open loop sends nothing before its schedule starts; it has no probe.
            move(index, to: .unanswered)
            // A replacement sends what came due while it connected.
            if phase == .running || connections[index].issueLimit != .max { issue(index) }
        }
    }

    /// A connect failed: move to the next source address, retry, or give up.
    private mutating func connectFailed(_ index: Int, _ errno: Errno) {
        _ = system_close(connections[index].fd)
        connections[index].fd = -1
        // A connect that failed at once (from `openSocket`) never left `.waiting`.
        if connections[index].state == .connecting { move(index, to: .waiting) }
        if errno == .addressNotAvailable && connector.rotatesSources {
            if let host = connector.rotate(after: connections[index].source) {
                report("out of ephemeral ports; binding new connections to source address \(host)")
            }
            if connections[index].source != connector.current {
                // Not the connection's fault: try again at once from the new address.
                connections[index].connectAttempts -= 1
                connector.push(index)
                return
            }
        }
        let attempts = connections[index].connectAttempts
        guard ConnectQueue.isRetriable(errno), attempts < ConnectQueue.maxAttempts else {
            let tries = attempts == 1 ? "1 attempt" : "\(attempts) attempts"
            giveUp(index, "connect to \(connector.target): \(errno) (after \(tries))")
            return
        }
        measurement.errors.connectRetries += 1
        connections[index].deadline = now + ConnectQueue.retryDelay(afterAttempt: attempts)
        connector.retrying.append(index)
    }

    /// Connection `index` will never be established.
    private mutating func giveUp(_ index: Int, _ message: String) {
        report(message)
        if connections[index].fd >= 0 { _ = system_close(connections[index].fd) }
        connections[index].fd = -1
        move(index, to: .failed)
        measurement.errors.failedConnects += 1
    }

    /// Times out connects in flight past their deadline, and probes (the
    /// connection stays, and the window waits for its first reply as for any
    /// other: `openWindowOrWait`), and queues the retries that are due.
    mutating func sweepConnects() {
        guard now >= connector.nextSweep else { return }
        connector.nextSweep = now + ConnectQueue.sweepInterval
        if counts.outstanding > 0 {
            for index in connections.indices where connections[index].deadline <= now {
                if connections[index].state == .connecting {
                    connectFailed(index, .timedOut)
                } else if connections[index].state == .probing {
                    // The probe timed out: the connection stays, unanswered.
                    move(index, to: .unanswered)
                }
            }
        }
        var kept = 0
        for position in connector.retrying.indices {
            let index = connector.retrying[position]
            if connections[index].deadline <= now {
                connector.push(index)
            } else {
                connector.retrying[kept] = index
                kept += 1
            }
        }
        connector.retrying.removeLast(connector.retrying.count - kept)
    }
}
