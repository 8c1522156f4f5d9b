import Foundation
import TestSupport
import Testing
import UpperEcho

@testable import Reactor

@Suite("Idle timeout and connection limit", .timeLimit(.minutes(1)))
struct IdleAndLimitTests {
    @Test("an idle connection is closed after the idle timeout; one that keeps talking is not")
    func idleTimeoutClosesOnlyIdleConnections() throws {
        let server = try ServerHarness { $0.connection.idleTimeout = .seconds(1) }
        defer { try? server.shutdown() }
        let busy = try TestClient(port: server.port)
        let idleEnded = Counter()
        let talker = Background {
            // Round trips 10 ms apart, a hundred to the timeout, from before
            // the idle connection opens until it was closed: a whole timeout.
            var index = 0
            while idleEnded.current == 0 {
                let reply = try busy.echo("ping \(index)")
                guard reply == "PING \(index)" else { throw StepError("round trip \(index) got \(reply)") }
                index += 1
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
        // From before the connect: the server's timer starts after it, at the accept.
        let start = now()
        let idle = try TestClient(port: server.port)
        let closed = idle.receivesEndOfInput()
        let elapsed = now() - start
        idleEnded.add(1)
        #expect(closed, "the idle connection was not closed within 30 s")
        #expect(elapsed >= .seconds(1), "closed \(elapsed) after connecting, before the 1 s idle timeout")
        try talker.join()
        #expect(try busy.echo("last") == "LAST", "the busy connection was closed")
        let stats = try server.stats()
        #expect(stats.idleClosed == 1)
        #expect(stats.open == 1)
    }

    @Test("with maxConnections reached, the next connection is closed at once and counted as refused")
    func maxConnectionsRefusesTheNext() throws {
        let server = try ServerHarness { $0.maxConnections = 2 }
        defer { try? server.shutdown() }
        let first = try TestClient(port: server.port)
        #expect(try first.echo("one") == "ONE")
        let second = try TestClient(port: server.port)
        #expect(try second.echo("two") == "TWO")
        let third = try TestClient(port: server.port)
        #expect(third.receivesEndOfInput(), "the connection over the limit was not closed")
        var stats = try server.waitForStats { $0.refused == 1 }
        #expect(stats.refused == 1)
        #expect(stats.accepted == 3)
        #expect(stats.open == 2)
        #expect(try first.echo("still") == "STILL")
        // Below the limit again, a new connection is served.
        second.close()
        _ = try server.waitForStats { $0.open == 1 }
        let fourth = try TestClient(port: server.port)
        #expect(try fourth.echo("four") == "FOUR")
        stats = try server.stats()
        #expect(stats.refused == 1)
        #expect(stats.open == 2)
    }
}
