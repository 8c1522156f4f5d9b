import CEpollShim
import Foundation
import Syscalls
import TestSupport
import Testing
import UpperEcho

@testable import Reactor

@Suite("Many connections", .timeLimit(.minutes(1)))
struct ManyClientsTests {
    /// With nothing queued, no connection may be watched for writing: a
    /// writable socket is ready at once, so a write interest left on makes
    /// every wait return at once and every connection flush nothing. Some
    /// clients first make the server queue replies (write interest on), then
    /// read them all (it must go off again).
    @Test("with 100 idle clients after their replies drained, a 100 ms wait is one quiet epoll_wait")
    func writeInterestIsOffWhenIdle() throws {
        let harness = try ServerHarness()
        defer { try? harness.shutdown() }
        var clients: [TestClient] = []
        for _ in 0..<5 {
            let client = try TestClient(port: harness.port, receiveBuffer: 4096)
            let sent = try sendUntilServerStopsReading(client, harness: harness)
            let echoed = client.receive(count: sent)
            #expect(echoed.count == sent)
            #expect(echoed.allSatisfy { $0 == UInt8(ascii: "R") })
            clients.append(client)
        }
        #expect(try harness.stats().peakQueued >= TCPConnection.Options().highWaterMark, "nothing was ever queued")
        for index in 5..<100 {
            let client = try TestClient(port: harness.port)
            #expect(try client.echo("idle \(index)") == "IDLE \(index)")
            clients.append(client)
        }
        #expect(try harness.waitForStats { $0.open == 100 }.open == 100)
        try harness.stopLoopThread()
        let loop = harness.loopThread.loop
        try loop.runOnce(timeout: .zero)  // settle anything left from the round trips
        let mock = SyscallMock()
        let start = now()
        try mock.install { try loop.runOnce(timeout: .milliseconds(100)) }
        let elapsed = now() - start
        #expect(elapsed >= .milliseconds(95), "the wait ended early: something was ready")
        #expect(mock.calls(.epollWait) >= 1)
        #expect(mock.calls(.send) == 0, "a connection was woken to flush an empty queue")
        #expect(mock.calls(.recv) == 0)
        #expect(mock.calls(.epollCtl) == 0)
        #expect(harness.server.stats.open == 100)
    }

    /// Sends without blocking until the kernel has refused more for 100 ms
    /// while the loop runs, and the server has queued up to its high-water
    /// mark for some client: the first client sends until the server's queue
    /// for it passed the mark (a slow server that merely lags does not end
    /// it), the later ones until the server stopped reading them. Returns the
    /// bytes sent.
    private func sendUntilServerStopsReading(_ client: TestClient, harness: ServerHarness) throws -> Int {
        let chunk = [UInt8](repeating: UInt8(ascii: "r"), count: 16 * 1024)
        let highWaterMark = TCPConnection.Options().highWaterMark
        var sent = 0
        var refusedSince: Duration?
        let deadline = now() + .seconds(30)
        while now() < deadline {
            let result = chunk.withUnsafeBytes { system_send(client.fd, $0, CInt(MSG_DONTWAIT)) }
            switch result {
            case .success(let count):
                sent += count
                refusedSince = nil
            case .failure(let errno) where errno == .resourceTemporarilyUnavailable:
                if let since = refusedSince, now() - since >= .milliseconds(100),
                    try harness.stats().peakQueued >= highWaterMark
                {
                    return sent
                }
                refusedSince = refusedSince ?? now()
                Thread.sleep(forTimeInterval: 0.005)
            case .failure(let errno):
                throw StepError("send", errno)
            }
        }
        throw StepError("the server never stopped reading")
    }

    @Test("1,000 concurrent clients are each served their own bytes")
    func thousandClients() throws {
        let limit = system_setrlimit_raise_nofile()
        try #require(limit >= 2_500, "the descriptor limit \(limit) is too low for 1,000 clients in one process")
        let server = try ServerHarness { $0.backlog = 1_024 }
        defer { try? server.shutdown() }
        let count = 1_000
        var clients: [TestClient] = []
        clients.reserveCapacity(count)
        for _ in 0..<count { clients.append(try TestClient(port: server.port)) }
        // Every client has a request in flight before any reply is read.
        for (index, client) in clients.enumerated() { try client.send("client number \(index) at your service") }
        var wrong: [Int] = []
        for (index, client) in clients.enumerated()
        where client.receiveText("client number \(index) at your service")
            != "CLIENT NUMBER \(index) AT YOUR SERVICE"
        {
            wrong.append(index)
        }
        #expect(wrong.isEmpty, "clients \(wrong.prefix(10)) got wrong replies")
        let stats = try server.stats()
        #expect(stats.open == count)
        #expect(stats.accepted == count)
        #expect(try server.sourceCount() == server.baselineSources + count)
        for client in clients { client.close() }
        #expect(try server.waitForStats { $0.open == 0 }.closed == count)
        #expect(try server.sourceCount() == server.baselineSources)
    }
}
