import Foundation
import Syscalls
import TestSupport
import Testing

extension UpperEchoCLITests {
    @Suite struct Resources {
        /// With `ulimit -n 64` the server runs out of descriptors: the
        /// connections beyond stay in the kernel's backlog, the connected
        /// clients are served, accepting pauses instead of spinning on a
        /// listener that stays readable, and resumes when clients leave.
        @Test func runningOutOfDescriptorsPausesAcceptingWithoutSpinningAndResumes() throws {
            try withUpperEcho(descriptorLimit: 64) { server, port in
                // Only numbers below the limit count: a descriptor the server
                // inherited above it (from a test running in parallel) takes
                // no room the limit leaves.
                let held = server.openDescriptors().filter { $0 < 64 }.count
                let capacity = 64 - held
                let clients = try (0..<100).map { _ in try TestClient(port: port) }
                // The backlog is first in, first out: clients 0..<capacity are the accepted ones.
                #expect(waitUntil { server.stats()?["open"] == capacity }, "\(server.stats() ?? [:])")
                #expect(server.openDescriptors().filter { $0 < 64 }.count == 64)
                for index in 0..<capacity {
                    #expect(clients[index].roundTrip("client \(index)"), "connected client \(index) not served")
                }
                for index in capacity..<clients.count { try clients[index].send("waiting \(index)") }
                try clients[capacity].setTimeout(.milliseconds(200))
                #expect(clients[capacity].ending() == .timedOut, "a client beyond the limit was served")

                let load = try #require(server.cpuLoad(over: .seconds(1)))
                print("upper-echo CPU with descriptors exhausted and \(100 - capacity) pending: \(load * 100) %")
                #expect(load < 0.20)
                let saturated = try #require(server.stats())
                #expect(saturated["accept_pauses"] ?? 0 >= 1)
                #expect(saturated["accepted"] == capacity)

                // Five leave: the first five waiting are accepted and served.
                for index in 0..<5 { clients[index].close() }
                for index in capacity..<capacity + 5 {
                    try clients[index].setTimeout(.seconds(30))
                    let reply = clients[index].receiveText("waiting \(index)")
                    #expect(reply == "WAITING \(index)", "pending client \(index) not served after others left")
                }
                try clients[capacity + 5].setTimeout(.milliseconds(200))
                #expect(clients[capacity + 5].ending() == .timedOut, "more accepted than descriptors were freed")
                let resumed = try #require(server.stats())
                #expect(resumed["accepted"] == capacity + 5)
                #expect(resumed["open"] == capacity)
                #expect(resumed["closed"] == 5)
            }
        }

        /// 100 connected clients that send nothing: the server sleeps in its
        /// selector. Write interest must be off once each reply is sent;
        /// left on, a writable socket would wake the loop at once, forever.
        /// One client first makes the server queue replies, so that write
        /// interest was on and had to be turned off again.
        @Test(arguments: ["epoll", "poll", "select"])
        func anIdleServerWithAHundredIdleClientsUsesNoCPU(backend: String) throws {
            try withUpperEcho(["--selector", backend]) { server, port in
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
