import Foundation
import Syscalls
import Testing

extension UpperEchoTests {
    @Suite struct Limits {
        @Test func anIdleClientIsClosedAfterTheIdleTimeoutAndABusyOneIsNot() throws {
            try withUpperEcho(["--idle-timeout", "0.3"]) { server, port in
                let idle = try TestClient(port: port)
                #expect(idle.roundTrip("one request, then silence"))
                let start = ContinuousClock.now
                try idle.setTimeout(.milliseconds(1500))
                #expect(idle.ending() == .endOfFile)
                let elapsed = ContinuousClock.now - start
                #expect(elapsed >= .milliseconds(250) && elapsed < .milliseconds(1500), "closed after \(elapsed)")

                // A client that moves a byte every 100 ms outlives the timeout many times over.
                let busy = try TestClient(port: port)
                for round in 0..<8 {
                    #expect(busy.roundTrip("tick \(round)"), "the busy client was cut off at round \(round)")
                    Thread.sleep(forTimeInterval: 0.1)
                }
                #expect(busy.roundTrip("still here"))
                let stats = try #require(server.stats())
                #expect(stats["idle_closed"] == 1 && stats["open"] == 1)
            }
        }

        @Test func theClientBeyondMaxConnectionsIsClosedAtOnceWhileTheOthersAreServed() throws {
            try withUpperEcho(["--max-connections", "2"]) { server, port in
                let first = try TestClient(port: port)
                let second = try TestClient(port: port)
                #expect(first.roundTrip("first"))
                #expect(second.roundTrip("second"))
                let third = try TestClient(port: port)
                try third.setTimeout(.seconds(1))
                #expect(third.ending() == .endOfFile, "the third client was not closed at once")
                #expect(first.roundTrip("first again"))
                #expect(second.roundTrip("second again"))
                var stats = try #require(server.stats())
                #expect(stats["refused"] == 1 && stats["open"] == 2 && stats["accepted"] == 3)

                // A place freed: the next client is served.
                first.close()
                #expect(waitUntil { server.stats()?["open"] == 1 })
                let fourth = try TestClient(port: port)
                #expect(fourth.roundTrip("fourth"))
                stats = try #require(server.stats())
                #expect(stats["refused"] == 1 && stats["open"] == 2)
            }
        }
    }
}
