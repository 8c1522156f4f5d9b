// Socket calls, split from Syscalls.swift only to keep files short; the same
// policy applies (EINTR retried, errno typed).
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
package func system_setsockopt(_ fd: CInt, _ level: CInt, _ name: CInt, _ value: CInt) -> Result<Void, Errno> {
    var value = value
    return valueOrErrno(.setsockopt) {
        setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<CInt>.size))
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
package func system_getsockopt(_ fd: CInt, _ level: CInt, _ name: CInt) -> Result<CInt, Errno> {
    var value: CInt = 0
    var length = socklen_t(MemoryLayout<CInt>.size)
    return valueOrErrno(.getsockopt) { getsockopt(fd, level, name, &value, &length) }.map { _ in value }
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

/// The peer's address of a connected socket. The corresponding C function is `getpeername`.
package func system_getpeername(_ fd: CInt) -> Result<SocketAddress, Errno> {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let result = withUnsafeMutablePointer(to: &storage) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
            valueOrErrno(.getpeername) { cepoll_getpeername(fd, address, &length) }
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
