import Foundation
import Testing
import UpperEcho

@testable import Reactor

@Suite("Idle timeout and connection limit", .timeLimit(.minutes(1)))
struct IdleAndLimitTests {
    @Test("an idle connection is closed after the idle timeout; one that keeps talking is not")
    func idleTimeoutClosesOnlyIdleConnections() throws {
        let server = try ServerHarness { $0.connection.idleTimeout = .milliseconds(200) }
        defer { try? server.shutdown() }
        let busy = try TestClient(port: server.port)
        let talker = Background {
            // 16 round trips 50 ms apart: 800 ms, four idle timeouts' worth.
            for index in 0..<16 {
                let reply = try busy.roundTrip("ping \(index)")
                guard reply == "PING \(index)" else { throw StepError("round trip \(index) got \(reply)") }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        let idle = try TestClient(port: server.port, timeout: .seconds(5))
        let start = now()
        let closed = idle.receivesEndOfInput()
        let elapsed = now() - start
        #expect(closed, "the idle connection was not closed")
        #expect(elapsed >= .milliseconds(150), "closed before the idle timeout")
        #expect(elapsed < .seconds(2), "closed long after the idle timeout")
        try talker.join()
        #expect(try busy.roundTrip("last") == "LAST", "the busy connection was closed")
        let stats = try server.stats()
        #expect(stats.idleClosed == 1)
        #expect(stats.open == 1)
    }

    @Test("with maxConnections reached, the next connection is closed at once and counted as refused")
    func maxConnectionsRefusesTheNext() throws {
        let server = try ServerHarness { $0.maxConnections = 2 }
        defer { try? server.shutdown() }
        let first = try TestClient(port: server.port)
        #expect(try first.roundTrip("one") == "ONE")
        let second = try TestClient(port: server.port)
        #expect(try second.roundTrip("two") == "TWO")
        let third = try TestClient(port: server.port, timeout: .seconds(5))
        #expect(third.receivesEndOfInput(), "the connection over the limit was not closed")
        var stats = try server.waitForStats { $0.refused == 1 }
        #expect(stats.refused == 1)
        #expect(stats.accepted == 3)
        #expect(stats.open == 2)
        #expect(try first.roundTrip("still") == "STILL")
        // Below the limit again, a new connection is served.
        second.close()
        _ = try server.waitForStats { $0.open == 1 }
        let fourth = try TestClient(port: server.port)
        #expect(try fourth.roundTrip("four") == "FOUR")
        stats = try server.stats()
        #expect(stats.refused == 1)
        #expect(stats.open == 2)
    }
}
