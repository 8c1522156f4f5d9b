import Foundation
import Selectors
import Syscalls
import TestSupport
import Testing
import UpperEcho

@testable import Reactor

@Suite("A healthy server, diagnosed", .timeLimit(.minutes(2)))
struct DiagnosticsTests {
    @Test("under load from 100 clients: no busy-loop report, and the table agrees with the kernel")
    func healthyServerIsSilent() throws {
        let seen = Lock<[LoopDiagnostic]>([])
        let options = LoopOptions(
            metrics: true,
            diagnostics: LoopDiagnostics(busyLoopThreshold: 8) { diagnostic in seen.withLock { $0.append(diagnostic) } }
        )
        let harness = try ServerHarness(options: options)
        defer { try? harness.shutdown() }
        let clients = try (0..<100).map { _ in try TestClient(port: harness.port) }
        // Every client sends 20 messages back to back, then reads the
        // replies: readiness in many iterations in a row, on every side.
        for round in 0..<20 {
            for (index, client) in clients.enumerated() {
                try client.send(Array("client \(index) round \(round)\n".utf8))
            }
        }
        for (index, client) in clients.enumerated() {
            let expected = (0..<20).map { "CLIENT \(index) ROUND \($0)\n" }.joined()
            #expect(client.receive(count: expected.utf8.count) == Array(expected.utf8))
        }
        let audit = try harness.onLoop { _, loop in Result { try loop.auditSelector() } }.get()
        #expect(audit.isClean, "\(audit)")
        // The wake-up, the listener and the 100 connections.
        #expect(audit.kernelCount == 102)
        // A client that leaves, and one reset: still clean.
        clients[0].close()
        try harness.waitForStats { $0.closed == 1 }
        let after = try harness.onLoop { _, loop in Result { try loop.auditSelector() } }.get()
        #expect(after.isClean && after.kernelCount == 101, "\(after)")
        // Slow handlers are left out: a loop's thread that the machine
        // descheduled for 100 ms is one, and this machine is shared.
        let reports = seen.withLock { $0 }.filter {
            if case .slowHandler = $0 { return false }
            return true
        }
        #expect(reports.isEmpty, "a healthy server was reported: \(reports)")
        let metrics = try #require(harness.loopThread.loop.handle.metrics)
        #expect(metrics.eventsDispatched >= 100)
    }
}
