import Foundation
import Syscalls
import TestSupport
import Testing

extension UpperEchoCLITests {
    @Suite struct Limits {
        @Test(arguments: ServerLayout.everyAPI)
        func anIdleClientIsClosedAfterTheIdleTimeoutAndABusyOneIsNot(layout: ServerLayout) throws {
            try withUpperEcho(["--idle-timeout", "1"], layout: layout) { server, port in
                // A client that moves a byte every 10 ms, a hundred times in
                // a timeout, from before the idle one connects until it was
                // closed: it outlives a whole timeout.
                let busy = Shared(try TestClient(port: port))
                let idleEnded = Lock(false)
                let talker = Lock<String?>(nil)
                Thread {
                    var round = 0
                    while !idleEnded.withLock({ $0 }) {
                        guard busy.value.roundTrip("tick \(round)") else {
                            talker.withLock { $0 = "the busy client was cut off at round \(round)" }
                            return
                        }
                        round += 1
                        Thread.sleep(forTimeInterval: 0.01)
                    }
                    talker.withLock { $0 = "" }
                }.start()

                // From before the request: the server's last byte for the idle client comes after it.
                let start = ContinuousClock.now
                let idle = try TestClient(port: port)
                #expect(idle.roundTrip("one request, then silence"))
                #expect(idle.ending() == .endOfFile, "the idle client was not closed within 30 s")
                let elapsed = ContinuousClock.now - start
                idleEnded.withLock { $0 = true }
                #expect(elapsed >= .seconds(1), "closed after \(elapsed), before the 1 s idle timeout")

                #expect(waitUntil { talker.withLock { $0 } != nil }, "the busy client's thread did not end")
                #expect(talker.withLock { $0 } == "", "\(talker.withLock { $0 } ?? "")")
                #expect(busy.value.roundTrip("still here"))
                let stats = try #require(server.stats())
                #expect(stats["idle_closed"] == 1 && stats["open"] == 1)
            }
        }

        @Test(arguments: ServerLayout.everyAPI)
        func theClientBeyondMaxConnectionsIsClosedAtOnceWhileTheOthersAreServed(layout: ServerLayout) throws {
            try withUpperEcho(["--max-connections", "2"], layout: layout) { server, port in
                let first = try TestClient(port: port)
                let second = try TestClient(port: port)
                #expect(first.roundTrip("first"))
                #expect(second.roundTrip("second"))
                let third = try TestClient(port: port)
                #expect(third.ending() == .endOfFile, "the third client was not closed")
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

/// Hands a client to one other thread, which alone uses it until the test
/// has seen that thread end.
private final class Shared<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
