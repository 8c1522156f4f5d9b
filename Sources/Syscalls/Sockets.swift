// Sockets: creating, configuring, binding, connecting, accepting, sending,
// receiving and shutting down, with the constants those calls take. Every
// call goes through the policy of Retry.swift (EINTR retried, errno typed).
// Addresses are in SocketAddress.swift.
import CEpollShim
import SystemPackage

/// Creates a socket. The corresponding C function is `socket`.
package func system_socket(_ domain: CInt, _ type: CInt, _ proto: CInt = 0) -> Result<CInt, Errno> {
    valueOrErrno(.socket) { socket(domain, type, proto) }
}

/// Creates a connected pair of sockets. The corresponding C function is `socketpair`.
package func system_socketpair(_ domain: CInt, _ type: CInt, _ proto: CInt = 0) -> Result<(CInt, CInt), Errno> {
    var fds: (CInt, CInt) = (-1, -1)
    return withUnsafeMutableBytes(of: &fds) { raw in
        let pointer = raw.baseAddress!.assumingMemoryBound(to: CInt.self)
        return valueOrErrno(.socketpair) { socketpair(domain, type, proto, pointer) }.map { _ in
            (pointer[0], pointer[1])
        }
    }
}

/// Sets an integer socket option. The corresponding C function is `setsockopt`.
package func system_setsockopt(_ fd: CInt, _ option: SocketOption, _ value: CInt) -> Result<Void, Errno> {
    var value = value
    return valueOrErrno(.setsockopt) {
        setsockopt(fd, option.level, option.name, &value, socklen_t(MemoryLayout<CInt>.size))
    }.map { _ in () }
}

/// Sets `SO_LINGER`; `linger(on, 0)` makes `close` send a reset.
/// The corresponding C function is `setsockopt`.
package func system_setsockopt_linger(_ fd: CInt, on: Bool, seconds: CInt) -> Result<Void, Errno> {
    var value = linger(l_onoff: on ? 1 : 0, l_linger: seconds)
    return valueOrErrno(.setsockopt) {
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &value, socklen_t(MemoryLayout<linger>.size))
    }.map { _ in () }
}

/// Sets a time-out option (`SO_RCVTIMEO`, `SO_SNDTIMEO`): a blocking `recv`
/// or `send` that waits longer fails with `EAGAIN`. `.zero` waits forever.
/// The corresponding C function is `setsockopt`.
package func system_setsockopt_timeout(_ fd: CInt, _ name: CInt, _ timeout: Duration) -> Result<Void, Errno> {
    let (seconds, attoseconds) = timeout.components
    var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    return valueOrErrno(.setsockopt) {
        setsockopt(fd, SOL_SOCKET, name, &value, socklen_t(MemoryLayout<timeval>.size))
    }.map { _ in () }
}

/// Reads an integer socket option. The corresponding C function is `getsockopt`.
package func system_getsockopt(_ fd: CInt, _ option: SocketOption) -> Result<CInt, Errno> {
    var value: CInt = 0
    var length = socklen_t(MemoryLayout<CInt>.size)
    return valueOrErrno(.getsockopt) { getsockopt(fd, option.level, option.name, &value, &length) }.map { _ in value }
}

/// Binds a socket to an address. The corresponding C function is `bind`.
package func system_bind(_ fd: CInt, _ address: SocketAddress) -> Result<Void, Errno> {
    address.withSockAddr { pointer, length in valueOrErrno(.bind) { cepoll_bind(fd, pointer, length) } }.map { _ in () }
}

/// Marks a socket as accepting connections. The corresponding C function is `listen`.
package func system_listen(_ fd: CInt, _ backlog: CInt) -> Result<Void, Errno> {
    valueOrErrno(.listen) { listen(fd, backlog) }.map { _ in () }
}

/// Accepts a connection with `flags` (`SOCK_NONBLOCK`, `SOCK_CLOEXEC`) applied
/// atomically. The corresponding C function is `accept4`.
package func system_accept4(_ fd: CInt, _ flags: CInt) -> Result<CInt, Errno> {
    valueOrErrno(.accept4) { cepoll_accept4(fd, flags) }
}

/// Connects a socket. EINTR is not retried: a connect that was interrupted
/// goes on in the background and a second call would report EALREADY.
/// The corresponding C function is `connect`.
package func system_connect(_ fd: CInt, _ address: SocketAddress) -> Result<Void, Errno> {
    address.withSockAddr { pointer, length in
        valueOrErrno(.connect, retryOnInterrupt: false) { cepoll_connect(fd, pointer, length) }
    }.map { _ in () }
}

/// The local address of a socket. The corresponding C function is `getsockname`.
package func system_getsockname(_ fd: CInt) -> Result<SocketAddress, Errno> {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let result = withUnsafeMutablePointer(to: &storage) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
            valueOrErrno(.getsockname) { cepoll_getsockname(fd, address, &length) }
        }
    }
    return result.map { _ in SocketAddress(storage: storage) }
}

/// Receives up to `buffer.count` bytes. The corresponding C function is `recv`.
@inlinable @inline(__always)
package func system_recv(_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer, _ flags: CInt = 0) -> Result<
    Int, Errno
> {
    valueOrErrno(.recv) { recv(fd, buffer.baseAddress, buffer.count, flags) }
}

/// Sends up to `buffer.count` bytes, never raising SIGPIPE (`MSG_NOSIGNAL`):
/// a peer that vanished is an `EPIPE` for one connection, never the end of
/// the process. The corresponding C function is `send`.
@inlinable @inline(__always)
package func system_send(_ fd: CInt, _ buffer: UnsafeRawBufferPointer, _ flags: CInt = 0) -> Result<Int, Errno> {
    valueOrErrno(.send) { send(fd, buffer.baseAddress, buffer.count, flags | CInt(MSG_NOSIGNAL)) }
}

/// Shuts down one or both directions of a socket. The corresponding C function is `shutdown`.
package func system_shutdown(_ fd: CInt, _ how: CInt) -> Result<Void, Errno> {
    valueOrErrno(.shutdown) { shutdown(fd, how) }.map { _ in () }
}

/// The address families of `system_socket`, as `SocketAddress.family` reports them.
package enum AddressFamily {
    /// `AF_INET`: IPv4.
    package static var ipv4: CInt { AF_INET }
    /// `AF_INET6`: IPv6.
    package static var ipv6: CInt { AF_INET6 }
}

/// The `SOCK_*` bits of `system_socket`'s type; `nonBlocking` and
/// `closeOnExec` are also the flags of `system_accept4`.
package enum SocketType {
    /// `SOCK_STREAM`: a byte stream (TCP for the internet families).
    package static var stream: CInt { CInt(SOCK_STREAM.rawValue) }
    /// `SOCK_NONBLOCK`: calls that would wait fail with `EAGAIN` instead.
    package static var nonBlocking: CInt { CInt(SOCK_NONBLOCK.rawValue) }
    /// `SOCK_CLOEXEC`: the descriptor is closed in programs the process starts.
    package static var closeOnExec: CInt { CInt(SOCK_CLOEXEC.rawValue) }
}

/// An integer socket option: the level and the name that `system_setsockopt`
/// and `system_getsockopt` take, always together.
package struct SocketOption: Sendable {
    /// The protocol level: `SOL_SOCKET`, `IPPROTO_TCP`, ...
    package let level: CInt
    /// The option at that level: `SO_REUSEADDR`, `TCP_NODELAY`, ...
    package let name: CInt

    /// The option `name` at `level`.
    package init(level: CInt, name: CInt) {
        self.level = level
        self.name = name
    }

    /// `SOL_SOCKET, SO_REUSEADDR`: bind a port whose previous connections are in TIME_WAIT.
    package static var reuseAddress: SocketOption { SocketOption(level: SOL_SOCKET, name: SO_REUSEADDR) }
    /// `SOL_SOCKET, SO_REUSEPORT`: let several sockets bind the same port.
    package static var reusePort: SocketOption { SocketOption(level: SOL_SOCKET, name: SO_REUSEPORT) }
    /// `SOL_SOCKET, SO_ERROR`: the pending error, such as a non-blocking connect's outcome.
    package static var error: SocketOption { SocketOption(level: SOL_SOCKET, name: SO_ERROR) }
    /// `SOL_SOCKET, SO_RCVBUF`: the receive buffer's size.
    package static var receiveBuffer: SocketOption { SocketOption(level: SOL_SOCKET, name: SO_RCVBUF) }
    /// `SOL_SOCKET, SO_SNDBUF`: the send buffer's size.
    package static var sendBuffer: SocketOption { SocketOption(level: SOL_SOCKET, name: SO_SNDBUF) }
    /// `IPPROTO_TCP, TCP_NODELAY`: send small segments at once (no Nagle).
    package static var noDelay: SocketOption { SocketOption(level: CInt(IPPROTO_TCP), name: TCP_NODELAY) }
    /// `IPPROTO_IPV6, IPV6_V6ONLY`: an IPv6 socket that does not also take IPv4.
    package static var ipv6Only: SocketOption { SocketOption(level: CInt(IPPROTO_IPV6), name: IPV6_V6ONLY) }
    /// `IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT`: a bind that leaves the port to `connect`.
    package static var bindAddressNoPort: SocketOption {
        SocketOption(level: CInt(IPPROTO_IP), name: IP_BIND_ADDRESS_NO_PORT)
    }
}

/// The directions of `system_shutdown`.
package enum ShutdownHow {
    /// `SHUT_WR`: no more sends; the peer reads end of input.
    package static var write: CInt { CInt(SHUT_WR) }
}

/// The bytes received on socket `fd` and not read yet. The corresponding C
/// call is `ioctl(fd, FIONREAD)`.
package func system_unread_bytes(_ fd: CInt) -> Result<Int, Errno> {
    valueOrErrno(.ioctl) { cepoll_unread_bytes(fd) }.map { Int($0) }
}

/// A number that changes whenever a byte is read from or written to `fd`
/// (for TCP: bytes consumed plus bytes written, from `TCP_INFO`; for a
/// listening socket, its accept queue; otherwise the bytes waiting), and
/// the bytes waiting to be read; `nil` when `fd` cannot tell (an eventfd,
/// a timerfd). Fails with EBADF when `fd` is not open. The corresponding C
/// calls are `ioctl(FIONREAD)` and `getsockopt(TCP_INFO)`.
package func system_progress_mark(_ fd: CInt) -> Result<(mark: Int64, unread: Int)?, Errno> {
    var mark: Int64 = 0
    var unread: Int64 = 0
    return valueOrErrno(.ioctl) { cepoll_progress_mark(fd, &mark, &unread) }.map { $0 == 0 ? (mark, Int(unread)) : nil }
}

/// Makes a listening TCP socket drop every segment that would open a new
/// connection, and keep every other (see `cepoll_drop_new_connections`).
/// The corresponding C call is `setsockopt(SO_ATTACH_FILTER)`.
package func system_drop_new_connections(_ fd: CInt) -> Result<Void, Errno> {
    valueOrErrno(.setsockopt) { cepoll_drop_new_connections(fd) }.map { _ in () }
}
