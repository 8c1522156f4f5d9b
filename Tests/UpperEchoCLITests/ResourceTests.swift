import Foundation
import Syscalls
import TestSupport
import Testing

extension UpperEchoCLITests {
    @Suite struct Resources {
        /// With `ulimit -n 64` the server runs out of descriptors: the
        /// connections beyond stay in the kernel's backlog (one per loop under
        /// reuseport), the connected clients are served, accepting pauses
        /// instead of spinning on a listener that stays readable, and resumes
        /// when clients leave, accepting exactly as many as left.
        @Test(arguments: ServerLayout.everyAPI)
        func runningOutOfDescriptorsPausesAcceptingWithoutSpinningAndResumes(layout: ServerLayout) throws {
            try withUpperEcho(layout: layout, descriptorLimit: 64) { server, port in
                // Only numbers below the limit count: a descriptor the server
                // inherited above it (from a test running in parallel) takes
                // no room the limit leaves.
                let held = server.openDescriptors().filter { $0 < 64 }.count
                let capacity = 64 - held
                let clients = try (0..<100).map { _ in try TestClient(port: port) }
                let pending = try PendingReplies(clients) { "client \(100 + $0)" }
                let length = pending.messageLength
                // Everything the accepted clients sent has been read and answered.
                #expect(
                    waitUntil {
                        let stats = server.stats() ?? [:]
                        return stats["open"] == capacity && stats["bytes_out"] == capacity * length
                    }, "\(server.stats() ?? [:])")
                #expect(server.openDescriptors().filter { $0 < 64 }.count == 64)
                #expect(
                    pending.waitForAnswered(capacity), "connected clients not all served: \(pending.answered.count)")
                let served = pending.answered
                #expect(served.count == capacity && pending.bytesReceived == capacity * length)
                if layout.hasOneBacklog {
                    // One backlog, first in, first out: the first to connect.
                    #expect(served == Array(0..<capacity))
                }

                let load = try #require(server.cpuLoad(over: .seconds(1)))
                print(
                    "upper-echo (\(layout)) CPU with descriptors exhausted and \(100 - capacity) pending: \(load * 100) %"
                )
                #expect(load < 0.20)
                let saturated = try #require(server.stats())
                #expect(saturated["accept_pauses"] ?? 0 >= 1)
                #expect(saturated["accepted"] == capacity && saturated["bytes_in"] == capacity * length)

                // Five leave: five of the waiting are accepted and served, no more.
                for index in served.prefix(5) { clients[index].close() }
                #expect(
                    waitUntil {
                        let stats = server.stats() ?? [:]
                        return stats["closed"] == 5 && stats["bytes_out"] == (capacity + 5) * length
                    }, "\(server.stats() ?? [:])")
                #expect(pending.waitForAnswered(capacity + 5), "waiting clients not served after others left")
                #expect(pending.answered.count == capacity + 5, "more accepted than descriptors were freed")
                #expect(pending.mismatched.isEmpty, "wrong replies: \(pending.mismatched)")
                let resumed = try #require(server.stats())
                #expect(resumed["accepted"] == capacity + 5)
                #expect(resumed["open"] == capacity)
                #expect(resumed["bytes_in"] == (capacity + 5) * length)
            }
        }

        /// 100 connected clients that send nothing: the server sleeps in its
        /// selector. Write interest must be off once each reply is sent;
        /// left on, a writable socket would wake the loop at once, forever.
        /// One client first makes the server queue replies, so that write
        /// interest was on and had to be turned off again.
        @Test(arguments: ["epoll", "poll", "select"], ServerLayout.everyAPI)
        func anIdleServerWithAHundredIdleClientsUsesNoCPU(backend: String, layout: ServerLayout) throws {
            try withUpperEcho(["--selector", backend], layout: layout) { server, port in
                let flooder = try TestClient(port: port)
                // Until the server has queued replies, however many stalls of
                // 100 ms a lagging server causes before that (at most 30 s).
                var flood = 0
                let queued = waitUntil {
                    let offset = flood
                    flood += flooder.sendUntilStalled(stall: .milliseconds(100)) {
                        UInt8(truncatingIfNeeded: offset + $0)
                    }
                    return server.stats()?["peak_queued"] ?? 0 > 0
                }
                #expect(queued, "the server never queued: write interest never on")
                #expect(flooder.receive(count: flood).count == flood)
                let clients = try (0..<100).map { _ in try TestClient(port: port) }
                for (index, client) in clients.enumerated() {
                    #expect(client.roundTrip("client \(index) is here"), "client \(index) not served")
                }
                Thread.sleep(forTimeInterval: 0.1)
                let cpu = try #require(server.cpuTime())
                Thread.sleep(forTimeInterval: 1)
                let used = try #require(server.cpuTime()) - cpu
                print("upper-echo (\(backend)) CPU over 1 s idle with 100 clients: \(used)")
                #expect(used < .milliseconds(50))
                #expect(server.stats()?["open"] == 101)
            }
        }
    }
}
