import SystemPackage
import Syscalls

/// Why a socket operation failed, with the address involved where there is one.
public struct SocketError: Error, Sendable, CustomStringConvertible {
    /// What was being done: "bind", "listen", "socket", ...
    public let operation: String
    /// The kernel's reason.
    public let errno: Errno
    /// The address, for bind and connect.
    public let address: String?

    /// Creates an error.
    public init(_ operation: String, _ errno: Errno, address: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.address = address
    }

    /// `cannot bind 127.0.0.1:8000: Address already in use`.
    public var description: String {
        let target = address.map { " \($0)" } ?? ""
        return "cannot \(operation)\(target): \(errno)"
    }
}

/// The non-blocking socket calls the reactor makes, each one mapped to a
/// value: progress, would-block, or the errno.
enum Socket {
    /// Whether an errno means "try again when ready".
    @inline(__always)
    static func isWouldBlock(_ errno: Errno) -> Bool {
        errno == .resourceTemporarilyUnavailable || errno == .wouldBlock
    }

    /// Receives into `buffer`: `.processed(0)` is end of input.
    @inline(__always)
    static func receive(_ fd: CInt, into buffer: UnsafeMutableRawBufferPointer) -> Result<IOResult<Int>, Errno> {
        switch system_recv(fd, buffer) {
        case .success(let count): .success(.processed(count))
        case .failure(let errno) where isWouldBlock(errno): .success(.wouldBlock)
        case .failure(let errno): .failure(errno)
        }
    }

    /// Sends from `buffer` without raising SIGPIPE.
    @inline(__always)
    static func send(_ fd: CInt, _ buffer: UnsafeRawBufferPointer) -> Result<IOResult<Int>, Errno> {
        switch system_send(fd, buffer) {
        case .success(let count): .success(.processed(count))
        case .failure(let errno) where isWouldBlock(errno): .success(.wouldBlock)
        case .failure(let errno): .failure(errno)
        }
    }

    /// Accepts one connection, non-blocking and close-on-exec.
    @inline(__always)
    static func accept(_ fd: CInt) -> Result<IOResult<CInt>, Errno> {
        switch system_accept4(fd, SocketType.nonBlocking | SocketType.closeOnExec) {
        case .success(let client): .success(.processed(client))
        case .failure(let errno) where isWouldBlock(errno): .success(.wouldBlock)
        case .failure(let errno): .failure(errno)
        }
    }

    /// A listening TCP socket on `address`: non-blocking, close-on-exec,
    /// `SO_REUSEADDR`, optionally `SO_REUSEPORT`, IPv6 sockets IPv6-only.
    static func listen(on address: SocketAddress, backlog: CInt, reusePort: Bool) throws(SocketError) -> CInt {
        let type = SocketType.stream | SocketType.nonBlocking | SocketType.closeOnExec
        let fd: CInt
        switch system_socket(address.family, type) {
        case .success(let value): fd = value
        case .failure(let errno): throw SocketError("create a socket for", errno, address: address.description)
        }
        func fail(_ operation: String, _ errno: Errno) -> SocketError {
            _ = system_close(fd)
            return SocketError(operation, errno, address: address.description)
        }
        if case .failure(let errno) = system_setsockopt(fd, .reuseAddress, 1) {
            throw fail("set SO_REUSEADDR on", errno)
        }
        if reusePort, case .failure(let errno) = system_setsockopt(fd, .reusePort, 1) {
            throw fail("set SO_REUSEPORT on", errno)
        }
        if address.family == AddressFamily.ipv6,
            case .failure(let errno) = system_setsockopt(fd, .ipv6Only, 1)
        {
            throw fail("set IPV6_V6ONLY on", errno)
        }
        if case .failure(let errno) = system_bind(fd, address) { throw fail("bind", errno) }
        if case .failure(let errno) = system_listen(fd, backlog) { throw fail("listen on", errno) }
        return fd
    }
}
