import CEpollShim
import Foundation
import Syscalls
import Testing
import TestSupport
import UpperEcho

@testable import Reactor

/// `UpperEchoServer.shutdown(grace:)` as a drain that loses no request: the
/// connections still in the listen queue are accepted and served, and every
/// request that has arrived is answered before the end of input.
@Suite("The server's drain", .timeLimit(.minutes(2)))
struct ShutdownDrainTests {
    @Test("a shutdown serves the connections still queued in the listener and their requests")
    func servesTheListenQueue() throws {
        let server = try ServerHarness()
        // The loop stops: the kernel completes the handshakes, nothing accepts them.
        try server.stopLoopThread()
        let clients = try (0..<4).map { _ in try TestClient(port: server.port) }
        for (index, client) in clients.enumerated() { try client.send("queued \(index)\n") }
        server.server.shutdown(grace: .seconds(60))
        #expect(server.server.stats.accepted == 4, "the shutdown did not accept the queued connections")
        let done = Background {
            clients.enumerated().map { index, client in
                var received: [UInt8] = []
                let ending = client.receiveUntilEnd { _, bytes in received += bytes }
                client.close()
                return (String(decoding: received, as: UTF8.self), "\(ending)", "QUEUED \(index)\n")
            }
        }
        #expect(try drive(server.loopThread.loop, timeout: .seconds(60)) { server.server.stats.open == 0 })
        for (received, ending, expected) in try done.join(timeout: .seconds(60)) {
            #expect(
                received == expected && ending == Ending.endOfFile.description,
                "got \(received.debugDescription), \(ending)")
        }
        let stats = server.server.stats
        #expect(stats.resets == 0 && stats.bytesIn == stats.bytesOut, "\(stats)")
    }

    @Test("a shutdown answers a request that had arrived on an open connection but was not read")
    func answersUnreadRequests() throws {
        let server = try ServerHarness()
        let client = try TestClient(port: server.port)
        #expect(try client.echo("first\n") == "FIRST\n")
        try server.stopLoopThread()
        try client.send("second\n")
        server.server.shutdown(grace: .seconds(60))
        let done = Background {
            var received: [UInt8] = []
            let ending = client.receiveUntilEnd { _, bytes in received += bytes }
            client.close()
            return (String(decoding: received, as: UTF8.self), "\(ending)")
        }
        #expect(try drive(server.loopThread.loop, timeout: .seconds(60)) { server.server.stats.open == 0 })
        let (received, ending) = try done.join(timeout: .seconds(60))
        #expect(received == "SECOND\n", "the request that had arrived was not answered")
        #expect(ending == Ending.endOfFile.description)
    }

    @Test("a connection accepted by the shutdown, its request still on the way, is answered")
    func waitsForTheFirstRequest() throws {
        let server = try ServerHarness()
        try server.stopLoopThread()
        let client = try TestClient(port: server.port)
        server.server.shutdown(grace: .seconds(60))
        #expect(server.server.stats.open == 1)
        // Now the request comes, after the shutdown began.
        try client.send("late\n")
        let done = Background {
            var received: [UInt8] = []
            let ending = client.receiveUntilEnd { _, bytes in received += bytes }
            client.close()
            return (String(decoding: received, as: UTF8.self), "\(ending)")
        }
        #expect(try drive(server.loopThread.loop, timeout: .seconds(60)) { server.server.stats.open == 0 })
        let (received, ending) = try done.join(timeout: .seconds(60))
        #expect(
            received == "LATE\n" && ending == Ending.endOfFile.description,
            "got \(received.debugDescription), \(ending)")
    }

    @Test("a health check (connect, ping, PING, reset) is a probe reset; a reset owing replies is a client reset")
    func healthChecksAreProbes() throws {
        let server = try ServerHarness()
        defer { try? server.shutdown() }
        for round in 1...3 {
            let check = try TestClient(port: server.port)
            #expect(try check.echo("ping\n") == "PING\n")
            try check.closeWithReset()
            let stats = try server.waitForStats(timeout: .seconds(60)) { $0.closed == round }
            #expect(stats.probeResets == round && stats.resets == 0, "\(stats)")
        }
        // Replies queued for a client that does not read: owed when it resets.
        let client = try TestClient(port: server.port, receiveBuffer: 4096)
        _ = client.sendUntilStalled { _ in UInt8(ascii: "r") }
        #expect(try server.waitForStats(timeout: .seconds(60)) { $0.peakQueued > 0 }.peakQueued > 0)
        try client.closeWithReset()
        let stats = try server.waitForStats(timeout: .seconds(60)) { $0.closed == 4 }
        #expect(stats.probeResets == 3 && stats.resets == 1, "\(stats)")
    }
}
