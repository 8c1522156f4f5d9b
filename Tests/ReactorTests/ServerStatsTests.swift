import CEpollShim
import Foundation
import Syscalls
import Testing
import UpperEcho

@testable import Reactor

/// What `UpperEchoServer.stats` promises: one set of counters, up to date at
/// any moment, with `bytesOut` what the kernel took and health-check probes
/// apart from client resets.
@Suite("UpperEchoServer's counters", .timeLimit(.minutes(1)))
struct ServerStatsTests {
    @Test("bytesOut counts what the kernel took, not what was queued and then dropped")
    func bytesOutExcludesDroppedReplies() throws {
        let server = try ServerHarness()
        let client = try TestClient(port: server.port, timeout: .seconds(60), receiveBuffer: 4096)
        // Send without reading until the server has queued replies.
        let chunk = [UInt8](repeating: 0x61, count: 65536)
        var sent = 0
        let queued = try waitUntil(timeout: .seconds(60)) {
            if try server.stats().peakQueued > 0 { return true }
            if case .success(let count) = chunk.withUnsafeBytes({ system_send(client.fd, $0, CInt(MSG_DONTWAIT)) }) {
                sent += count
            }
            return false
        }
        try #require(queued, "the server never queued a reply")
        // The grace of zero drops what is still queued.
        try server.shutdown(grace: .zero)
        let stats = server.server.stats
        #expect(stats.open == 0 && stats.closed == 1, "\(stats)")
        #expect(stats.bytesIn > 0 && stats.bytesIn <= sent)
        #expect(stats.bytesOut < stats.bytesIn, "bytesOut \(stats.bytesOut) counts the replies dropped at the grace")
    }

    @Test("a connection reset before it sends a byte is a probe, not a client reset")
    func probeResetsApartFromClientResets() throws {
        let server = try ServerHarness()
        defer { try? server.shutdown() }
        let probe = try TestClient(port: server.port)
        _ = try server.waitForStats(timeout: .seconds(60)) { $0.open == 1 }
        try probe.closeWithReset()
        var stats = try server.waitForStats(timeout: .seconds(60)) { $0.closed == 1 }
        #expect(stats.probeResets == 1 && stats.resets == 0, "\(stats)")

        let client = try TestClient(port: server.port)
        #expect(try client.roundTrip("hello") == "HELLO")
        try client.closeWithReset()
        stats = try server.waitForStats(timeout: .seconds(60)) { $0.closed == 2 }
        #expect(stats.probeResets == 1 && stats.resets == 1, "\(stats)")
        #expect(stats.open == 0 && stats.accepted == 2)
    }

    @Test("stats is up to date while the server runs: accept pauses, accepted, bytes")
    func statsIsCurrent() throws {
        let server = try ServerHarness()
        defer { try? server.shutdown() }
        let client = try TestClient(port: server.port)
        #expect(try client.roundTrip("abc") == "ABC")
        let stats = try server.waitForStats(timeout: .seconds(60)) { $0.bytesOut == 3 }
        #expect(stats.accepted == 1 && stats.open == 1 && stats.bytesIn == 3 && stats.bytesOut == 3, "\(stats)")
    }

    @Test("the stats line: the key=value pairs after `stats`, open derived from the counts")
    func statsLine() {
        var stats = ServerStats()
        stats.accepted = 5
        stats.refused = 1
        stats.closed = 3
        stats.probeResets = 1
        #expect(stats.open == 1)
        #expect(stats.description == "stats " + stats.pairs)
        #expect(
            stats.pairs
                == "open=1 accepted=5 closed=3 refused=1 idle_closed=0 resets=0 probe_resets=1 bytes_in=0 bytes_out=0"
                + " peak_queued=0 accept_pauses=0")
    }

    @Test("an endpoint prints as host:port, an IPv6 host in brackets")
    func endpointDescription() {
        #expect(Endpoint(host: "127.0.0.1", port: 8000).description == "127.0.0.1:8000")
        #expect(Endpoint(host: "::1", port: 8000).description == "[::1]:8000")
    }
}

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
