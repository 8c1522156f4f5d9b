import Foundation
import TestSupport
import Testing
import UpperEcho

@testable import Reactor

@Suite("UpperEchoServer over TCP", .timeLimit(.minutes(1)))
struct EchoTests {
    @Test("all 256 byte values come back, a-z upper-cased and nothing else changed")
    func allByteValuesRoundTrip() throws {
        let server = try ServerHarness()
        defer { try? server.shutdown() }
        let client = try TestClient(port: server.port)
        let bytes = (0...255).map { UInt8($0) }
        try client.send(bytes)
        let echoed = client.receive(count: 256)
        #expect(echoed == bytes.map { (0x61...0x7A).contains($0) ? $0 - 0x20 : $0 })
        #expect(echoed.count == 256)
        let stats = try server.waitForStats { $0.bytesOut >= 256 }
        #expect(stats.bytesIn == 256)
        #expect(stats.accepted == 1)
        #expect(stats.open == 1)
    }

    @Test("8 MiB streamed while a second thread reads all come back upper-cased")
    func streamsEightMebibytes() throws {
        let server = try ServerHarness()
        defer { try? server.shutdown() }
        let client = try TestClient(port: server.port, timeout: .seconds(20))
        let stream = PatternStream()
        let blocks = 8 * 1024 * 1024 / PatternStream.blockSize
        let writer = Background { try stream.send(blocks: blocks, on: client) }
        let reader = Background { try stream.receiveAndVerify(count: blocks * PatternStream.blockSize, on: client) }
        try writer.join(timeout: .seconds(50))
        try reader.join(timeout: .seconds(50))
        let stats = try server.stats()
        #expect(stats.bytesIn == 8 * 1024 * 1024)
        #expect(stats.resets == 0)
    }

    @Test("after the client shuts its sending side, every reply is delivered, then end of input")
    func halfCloseDeliversEverything() throws {
        let server = try ServerHarness()
        defer { try? server.shutdown() }
        let client = try TestClient(port: server.port, timeout: .seconds(20))
        let stream = PatternStream()
        let total = 1024 * 1024
        let writer = Background {
            try stream.send(blocks: total / PatternStream.blockSize, on: client)
            try client.shutdownWrite()
        }
        try stream.receiveAndVerify(count: total, on: client)
        try writer.join()
        #expect(client.receivesEndOfInput(), "the server did not close after its last reply")
        let stats = try server.waitForStats { $0.open == 0 }
        #expect(stats.open == 0)
        #expect(stats.closed == 1)
        #expect(stats.resets == 0)
        #expect(stats.bytesOut == total)
    }

    /// The server never stops reading here (a high-water mark above the
    /// stream) and the client reads nothing until the server has read its end
    /// of input, so megabytes of replies are still queued when the end of input
    /// arrives: they must all be delivered before the connection closes.
    @Test("end of input with megabytes of replies queued delivers them all before closing")
    func endOfInputWithQueuedReplies() throws {
        let total = 16 * 1024 * 1024
        let server = try ServerHarness { $0.connection.highWaterMark = 2 * total }
        defer { try? server.shutdown() }
        let client = try TestClient(port: server.port, timeout: .seconds(20), receiveBuffer: 4096)
        let stream = PatternStream()
        try Background {
            try stream.send(blocks: total / PatternStream.blockSize, on: client)
            try client.shutdownWrite()
        }.join()
        let beforeReading = try server.waitForStats { $0.bytesIn == total }
        #expect(beforeReading.bytesIn == total)
        #expect(beforeReading.peakQueued >= total / 2, "the replies were not queued at end of input")
        #expect(beforeReading.open == 1, "the connection closed with replies queued")
        try stream.receiveAndVerify(count: total, on: client)
        #expect(client.receivesEndOfInput())
        let stats = try server.waitForStats { $0.open == 0 }
        #expect(stats.closed == 1)
        #expect(stats.resets == 0)
    }

    @Test("several clients are served independently")
    func severalClients() throws {
        let server = try ServerHarness()
        defer { try? server.shutdown() }
        let clients = try (0..<10).map { _ in try TestClient(port: server.port) }
        for (index, client) in clients.enumerated() { try client.send("client \(index) says hi") }
        for (index, client) in clients.enumerated() {
            #expect(client.receiveText("client \(index) says hi") == "CLIENT \(index) SAYS HI")
        }
        #expect(try server.waitForStats { $0.open == 10 }.open == 10)
    }

    @Test("shutdown closes the listener and every connection, then stops the loop")
    func gracefulShutdown() throws {
        let server = try ServerHarness()
        let idle = try TestClient(port: server.port)
        #expect(try idle.echo("still here") == "STILL HERE")
        // A grace period far beyond the join below: only the last connection
        // closing can stop the loop in time.
        server.beginShutdown(grace: .seconds(600))
        #expect(idle.receivesEndOfInput())
        idle.close()
        // Well before the grace period: the loop stops once every connection closed.
        try server.loopThread.join(timeout: .seconds(40))
        // The listener is closed too: nothing accepts on the port any more.
        #expect(throws: ClientError.self) { try TestClient(port: server.port) }
        #expect(server.loopThread.loop.sourceCount == 1, "only the loop's own wake-up should be left")
    }
}
