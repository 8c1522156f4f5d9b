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
    @Test(arguments: ServerLayout.everyAPI)
    func descriptorExhaustionPausesAcceptingAndResumesAsClientsLeave(layout: ServerLayout) throws {
        let limit = 256
        let clientCount = 400
        let batch = 50
        let server = try ServerProcess.upperEcho(layout.arguments, descriptorLimit: limit)
        defer { server.stop() }
        // Only numbers below the limit count: a descriptor the server inherited
        // above it (from a test of another suite running in parallel) takes no
        // room the limit leaves.
        let held = server.openDescriptors().count { $0 < limit }
        let capacity = limit - held
        let clients = try (0..<clientCount).map { _ in try Client(port: server.port) }
        // Every client sends at once, all messages the same length; which are
        // accepted first is the kernel's choice (one backlog per loop under
        // reuseport), so the replies tell.
        let pending = try PendingReplies(clients) { "client \(1000 + $0)" }
        let length = pending.messageLength
        func settled(accepted: Int) -> Bool {
            let stats = server.stats() ?? [:]
            return stats["accepted"] == accepted && stats["bytes_out"] == accepted * length
        }
        #expect(waitUntil { settled(accepted: capacity) }, "\(server.stats() ?? [:])")
        #expect(server.openDescriptors().count { $0 < limit } == limit)
        #expect(pending.waitForAnswered(capacity), "connected clients not all served: \(pending.answered.count)")
        #expect(pending.answered.count == capacity && pending.bytesReceived == capacity * length)
        if layout.hasOneBacklog {
            #expect(pending.answered == Array(0..<capacity), "one backlog is first in, first out")
        }

        let load = try #require(server.cpuLoad(over: .seconds(1)))
        #expect(load < 0.20, "CPU \(load * 100) % while saturated")
        let saturated = try #require(server.stats())
        #expect(saturated["accept_pauses"] ?? 0 >= 1 && saturated["accepted"] == capacity, "\(saturated)")

        // Served clients leave 50 at a time; as many waiting clients are accepted and served.
        var slowestResume = Duration.zero
        var served = capacity
        while served < clientCount {
            let count = min(batch, clientCount - served)
            let left = ContinuousClock.now
            let leaving = pending.answered.filter { clients[$0].fd >= 0 }.prefix(count)
            for index in leaving { clients[index].close() }
            served += count
            #expect(waitUntil { settled(accepted: served) }, "\(server.stats() ?? [:])")
            #expect(
                pending.waitForAnswered(served), "after \(count) left: \(pending.answered.count) of \(served) served")
            slowestResume = max(slowestResume, ContinuousClock.now - left)
        }
        #expect(pending.answered.count == clientCount && pending.mismatched.isEmpty, "wrong: \(pending.mismatched)")
        let final = try #require(server.stats())
        #expect(final["accepted"] == clientCount && final["open"] == capacity, "\(final)")
        #expect(final["closed"] == clientCount - capacity)
        #expect(server.isRunning, "upper-echo died: \(server.child.errors.text.suffix(500))")
        figure(
            "descriptor-exhaustion (\(layout))",
            "ulimit=\(limit) clients=\(clientCount) capacity=\(capacity) (server holds \(held) others)"
                + " waiting=\(clientCount - capacity) cpu_saturated=\(fixed(load * 100))%"
                + " accept_pauses=\(final["accept_pauses"] ?? -1) served_after_leaving=\(clientCount - capacity)"
                + " slowest_resume_per_\(batch)=\(Int(seconds(slowestResume) * 1000))ms"
        )
    }
}
