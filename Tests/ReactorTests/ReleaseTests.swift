import CEpollShim
import SystemPackage
import Syscalls
import TestSupport
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

    @Test(
        "a connection closed by its own handler, held by nothing but its loop, outlives the handler's call and is released when the batch ends"
    )
    func connectionClosedFromItsOwnHandler() throws {
        // The loop calls connections without retaining them; if it released
        // one the moment it unregistered, the rest of `handle` would run on
        // freed memory (AddressSanitizer reports it: CI runs this under ASan).
        let type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        let (mine, peer) = try system_socketpair(AF_UNIX, type).get()
        defer { _ = system_close(peer) }
        let loop = try makeLoop()
        let handler = ClosingHandler()
        weak var released: TCPConnection?
        do {
            let connection = try TCPConnection(
                loop: loop, fileDescriptor: FileDescriptor(rawValue: mine), handler: handler)
            released = connection
        }
        #expect(released != nil, "the loop does not hold its connection")
        try sendAll(Array("hello".utf8), to: peer)
        try loop.runOnce(timeout: .seconds(5))
        #expect(handler.received == 5)
        #expect(handler.reasons == [.closedLocally])
        #expect(released == nil, "the loop kept a closed connection past the batch")
        #expect(loop.sourceCount == 1, "only the loop's own wake-up should be left")
        var byte: UInt8 = 0
        let result = withUnsafeMutableBytes(of: &byte) { system_recv(peer, $0) }
        #expect(result == .success(0), "the peer did not read end of input")
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

/// Closes its connection from inside the read callback, as a server does
/// with a client that sent something it rejects.
final class ClosingHandler: TCPConnectionHandler {
    var received = 0
    var reasons: [TCPConnection.CloseReason] = []

    func connection(_ connection: TCPConnection, didRead bytes: UnsafeMutableRawBufferPointer) {
        received += bytes.count
        connection.abort()
    }

    func connectionDidClose(_ connection: TCPConnection, reason: TCPConnection.CloseReason) {
        reasons.append(reason)
    }
}
