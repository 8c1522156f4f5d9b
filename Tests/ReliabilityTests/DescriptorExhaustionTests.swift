import Foundation
import TestSupport
import Testing

extension ReliabilityTests {
    /// Scenario 5. The server under `ulimit -n 256` with 400 clients
    /// arriving: it runs out of descriptors, the clients beyond wait in the
    /// kernel's backlog, the connected ones are served, accepting pauses
    /// (under 20 % CPU, no spinning on a listener that stays readable), and
    /// resumes as clients leave, 50 at a time, until all 400 were served.
    /// (UpperEchoTests covers the same with `ulimit -n 64` and 100 clients.)
    @Test func descriptorExhaustionPausesAcceptingAndResumesAsClientsLeave() throws {
        let limit = 256
        let clientCount = 400
        let batch = 50
        let server = try ServerProcess.upperEcho([], descriptorLimit: limit)
        defer { server.stop() }
        // Only numbers below the limit count: a descriptor the server inherited
        // above it (from a test of another suite running in parallel) takes no
        // room the limit leaves.
        let held = server.openDescriptors().count { $0 < limit }
        let capacity = limit - held
        let clients = try (0..<clientCount).map { _ in try Client(port: server.port) }
        // The backlog is first in, first out: clients 0..<capacity are the accepted ones.
        #expect(waitUntil { server.stats()?["open"] == capacity }, "\(server.stats() ?? [:])")
        #expect(server.openDescriptors().count { $0 < limit } == limit)
        let unserved = (0..<capacity).filter { !clients[$0].roundTrip("connected client \($0)") }
        #expect(unserved.isEmpty, "connected clients not served: \(unserved.prefix(5))")
        for index in capacity..<clientCount { try clients[index].send(Array("waiting client \(index)".utf8)) }
        try clients[capacity].setTimeout(.milliseconds(200))
        #expect(clients[capacity].streamEnding() == .timedOut, "a client beyond the limit was served")

        let load = try #require(server.cpuLoad(over: .seconds(1)))
        #expect(load < 0.20, "CPU \(load * 100) % while saturated")
        let saturated = try #require(server.stats())
        #expect(saturated["accept_pauses"] ?? 0 >= 1 && saturated["accepted"] == capacity, "\(saturated)")

        // Clients leave 50 at a time; as many waiting clients are accepted and served.
        var leaving = 0
        var slowestResume = Duration.zero
        var next = capacity
        while next < clientCount {
            let count = min(batch, clientCount - next)
            let left = ContinuousClock.now
            for index in leaving..<leaving + count { clients[index].close() }
            leaving += count
            for index in next..<next + count {
                try clients[index].setTimeout(.seconds(30))
                let expected = Array("waiting client \(index)".utf8)
                #expect(clients[index].receive(count: expected.count) == expected.map(pythonUpper), "client \(index)")
            }
            slowestResume = max(slowestResume, ContinuousClock.now - left)
            next += count
        }
        let final = try #require(server.stats())
        #expect(final["accepted"] == clientCount && final["open"] == capacity, "\(final)")
        #expect(final["closed"] == clientCount - capacity)
        #expect(server.isRunning, "upper-echo died: \(server.child.errors.text.suffix(500))")
        figure(
            "descriptor-exhaustion",
            "ulimit=\(limit) clients=\(clientCount) capacity=\(capacity) (server holds \(held) others)"
                + " waiting=\(clientCount - capacity) cpu_saturated=\(fixed(load * 100))%"
                + " accept_pauses=\(final["accept_pauses"] ?? -1) served_after_leaving=\(clientCount - capacity)"
                + " slowest_resume_per_\(batch)=\(Int(seconds(slowestResume) * 1000))ms"
        )
    }
}
