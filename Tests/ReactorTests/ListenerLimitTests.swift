import CEpollShim
import Foundation
import Syscalls
import Testing
import TestSupport

@testable import Reactor

/// `TCPListener.Options.maxConnections`: the listener refuses, not its owner.
@Suite("TCPListener's connection limit", .timeLimit(.minutes(1)))
struct ListenerLimitTests {
    final class Owner: TCPConnectionHandler {
        var connections: [TCPConnection] = []
        weak var listener: TCPListener?
        func connection(_ connection: TCPConnection, didRead bytes: UnsafeMutableRawBufferPointer) {
            connection.write(UnsafeRawBufferPointer(bytes))
        }
        func connectionDidClose(_ connection: TCPConnection, reason: TCPConnection.CloseReason) {
            connections.removeAll { $0 === connection }
            listener?.connectionDidClose()
        }
    }

    @Test("beyond maxConnections a connection is closed on arrival and never handed out")
    func refusesBeyondTheLimit() throws {
        let loop = try makeLoop()
        let owner = Owner()
        var options = TCPListener.Options()
        options.maxConnections = 1
        var handedOut = 0
        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0, options: options) { fd in
            handedOut += 1
            owner.connections.append(try! TCPConnection(loop: loop, fileDescriptor: fd, handler: owner))
        }
        owner.listener = listener
        defer {
            listener.close()
            for connection in owner.connections { connection.abort() }
        }
        let first = try TestClient(port: listener.localAddress.port)
        #expect(try drive(loop, timeout: .seconds(30)) { listener.openCount == 1 })
        let second = try TestClient(port: listener.localAddress.port, timeout: .seconds(30))
        #expect(try drive(loop, timeout: .seconds(30)) { listener.refusedCount == 1 })
        #expect(second.receivesEndOfInput(), "the connection over the limit was not closed")
        #expect(handedOut == 1 && listener.acceptedCount == 2 && listener.openCount == 1)

        // One closes: the next is handed out.
        first.close()
        #expect(try drive(loop, timeout: .seconds(30)) { listener.openCount == 0 })
        let third = try TestClient(port: listener.localAddress.port)
        #expect(try drive(loop, timeout: .seconds(30)) { handedOut == 2 })
        try third.send("hi")
        #expect(try drive(loop, timeout: .seconds(30)) { owner.connections.first?.bytesSent == 2 })
        #expect(third.receiveText("hi") == "hi")
    }
}
