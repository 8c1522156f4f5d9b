import CEpollShim
import Foundation
import Syscalls
import TestSupport
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

    @Test("a connection reset with nothing owed is a probe, not a client reset")
    func probeResetsApartFromClientResets() throws {
        let server = try ServerHarness()
        defer { try? server.shutdown() }
        let probe = try TestClient(port: server.port)
        _ = try server.waitForStats(timeout: .seconds(60)) { $0.open == 1 }
        try probe.closeWithReset()
        var stats = try server.waitForStats(timeout: .seconds(60)) { $0.closed == 1 }
        #expect(stats.probeResets == 1 && stats.resets == 0, "\(stats)")

        // Every byte answered, nothing queued: nothing owed, still a probe.
        let client = try TestClient(port: server.port)
        #expect(try client.echo("hello") == "HELLO")
        try client.closeWithReset()
        stats = try server.waitForStats(timeout: .seconds(60)) { $0.closed == 2 }
        #expect(stats.probeResets == 2 && stats.resets == 0, "\(stats)")
        #expect(stats.open == 0 && stats.accepted == 2)
    }

    @Test("stats is up to date while the server runs: accept pauses, accepted, bytes")
    func statsIsCurrent() throws {
        let server = try ServerHarness()
        defer { try? server.shutdown() }
        let client = try TestClient(port: server.port)
        #expect(try client.echo("abc") == "ABC")
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

    @Test("UpperEchoServer counts accept pauses in its stats")
    func serverCountsPauses() throws {
        let loop = try makeLoop()
        var configuration = Configuration()
        configuration.port = 0
        let server = try UpperEchoServer(loop: loop, configuration: configuration)
        defer {
            // The grace timer closes what is left on the next iteration.
            server.shutdown(grace: .zero)
            try? loop.runOnce(timeout: .zero)
        }
        let client = try TestClient(port: server.localAddress.port)
        try client.send("x")
        let mock = SyscallMock()
        mock.force(.tooManyOpenFiles, on: .accept4)
        try mock.install {
            try loop.runOnce(timeout: .seconds(30))
            #expect(server.stats.acceptPauses == 1)
            #expect(try drive(loop) { server.stats.bytesOut == 1 })
        }
        #expect(server.stats.accepted == 1)
        #expect(client.receiveText("X") == "X")
    }
}
