import Foundation
import Syscalls
import SystemPackage

/// What went wrong in a client step (`"connect: Connection refused"`), so
/// that a failing test says which step.
public struct ClientError: Error, CustomStringConvertible {
    /// The step and the errno.
    public var description: String
    /// The error of `step`, which failed with `errno`.
    public init(_ step: String, _ errno: Errno) { description = "\(step): \(errno)" }
}

/// Opens a blocking TCP socket connected to `host:port` (a numeric address,
/// 127.0.0.1 unless told), the start of every test client. Its `recv` and `send` give up after `timeout`
/// (`SO_RCVTIMEO`, `SO_SNDTIMEO`), so a broken server fails a test instead
/// of hanging it. `receiveBuffer` and `sendBuffer` set `SO_RCVBUF` and
/// `SO_SNDBUF` before connecting (the window is small from the start, and the
/// kernel's autotuning, which on loopback grows buffers to megabytes and
/// would hide a slow reader, is off). A signal that interrupts `connect`
/// does not fail it: the connection goes on in the background and is waited
/// for. On failure the socket is closed.
public func openClientSocket(
    port: UInt16,
    host: String = "127.0.0.1",
    timeout: Duration,
    receiveBuffer: CInt? = nil,
    sendBuffer: CInt? = nil
) throws -> CInt {
    guard let address = SocketAddress(host: host, port: port) else {
        throw ClientError("parse \(host)", .invalidArgument)
    }
    let type = CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)
    let fd = try system_socket(address.family, type).mapError { ClientError("socket", $0) }.get()
    do {
        try setClientTimeout(fd, timeout)
        if let receiveBuffer {
            try system_setsockopt(fd, .receiveBuffer, receiveBuffer).mapError { ClientError("SO_RCVBUF", $0) }
                .get()
        }
        if let sendBuffer {
            try system_setsockopt(fd, .sendBuffer, sendBuffer).mapError { ClientError("SO_SNDBUF", $0) }
                .get()
        }
        var result = system_connect(fd, address)
        while case .failure(let errno) = result, errno == .interrupted || errno == .alreadyInProcess {
            Thread.sleep(forTimeInterval: 0.001)
            result = system_connect(fd, address)
        }
        if case .failure(.socketIsConnected) = result { return fd }
        try result.mapError { ClientError("connect", $0) }.get()
        return fd
    } catch {
        _ = system_close(fd)
        throw error
    }
}

/// Sets how long a `recv` or a `send` on `fd` may block.
public func setClientTimeout(_ fd: CInt, _ timeout: Duration) throws {
    try system_setsockopt_timeout(fd, SO_RCVTIMEO, timeout).mapError { ClientError("SO_RCVTIMEO", $0) }.get()
    try system_setsockopt_timeout(fd, SO_SNDTIMEO, timeout).mapError { ClientError("SO_SNDTIMEO", $0) }.get()
}

/// The socket of a blocking test client and the two ways to end it, written
/// once: each suite's client subclasses it with its own steps. The socket is
/// closed when the client goes, if the test did not close it.
open class ClientSocket {
    /// The socket, -1 once closed.
    public private(set) var fd: CInt

    /// Takes over `fd`, a connected socket (`openClientSocket`).
    public init(fd: CInt) {
        self.fd = fd
    }

    deinit { close() }

    /// Closes the socket; later calls do nothing.
    public final func close() {
        guard fd >= 0 else { return }
        _ = system_close(fd)
        fd = -1
    }

    /// Sets `SO_LINGER` to 0 so that `close` resets the connection (RST)
    /// instead of closing it gracefully (FIN); then closes.
    public final func closeWithReset() throws {
        guard fd >= 0 else { return }
        try system_setsockopt_linger(fd, on: true, seconds: 0).mapError { ClientError("SO_LINGER", $0) }.get()
        close()
    }
}
