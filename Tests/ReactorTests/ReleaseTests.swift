import CEpollShim
import SystemPackage
import Syscalls
import Testing

@testable import Reactor

/// A loop released with sources still open (no `close()`): the sources go
/// with it, and must not take their descriptors' lifetimes with them.
@Suite("Sources released with their loop", .timeLimit(.minutes(1)))
struct ReleaseTests {
    @Test("a connection released with its loop, never closed, closes its socket: the peer reads end of input")
    func connectionReleasedWithItsLoop() throws {
        let type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        let (mine, peer) = try system_socketpair(AF_UNIX, type).get()
        defer { _ = system_close(peer) }
        weak var released: TCPConnection?
        do {
            let loop = try makeLoop()
            let connection = try TCPConnection(
                loop: loop, fileDescriptor: FileDescriptor(rawValue: mine), handler: RecordingHandler())
            released = connection
            #expect(!connection.isClosed)
        }
        #expect(released == nil, "the connection outlived its loop")
        var byte: UInt8 = 0
        let result = withUnsafeMutableBytes(of: &byte) { system_recv(peer, $0) }
        #expect(result == .success(0), "the peer did not read end of input: the socket is still open")
    }

    @Test("a listener released with its loop, never closed, closes its socket: the port is free again")
    func listenerReleasedWithItsLoop() throws {
        let port: UInt16
        do {
            let loop = try makeLoop()
            let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { _ = system_close($0.rawValue) }
            port = listener.localAddress.port
            // While it listens, the port is taken.
            #expect(throws: SocketError.self) {
                _ = try TCPListener(loop: loop, host: "127.0.0.1", port: port) { _ = system_close($0.rawValue) }
            }
        }
        let loop = try makeLoop()
        let again = try TCPListener(loop: loop, host: "127.0.0.1", port: port) { _ = system_close($0.rawValue) }
        again.close()
    }
}
