import Foundation
import TestSupport
import Testing

extension UpperEchoCLITests {
    /// `--diagnose` on a healthy server: the audits run (a clean audit is
    /// logged at the debug level) and nothing is reported, under traffic
    /// that keeps descriptors ready in many iterations in a row.
    @Suite struct Diagnose {
        @Test(arguments: ServerLayout.everyAPI)
        func aHealthyServerUnderLoadReportsNothingAndItsAuditsAreClean(layout: ServerLayout) throws {
            try withUpperEcho(["--diagnose", "--log-level", "debug"], layout: layout) { server, port in
                let clients = try (0..<50).map { _ in try TestClient(port: port) }
                for round in 0..<20 {
                    for (index, client) in clients.enumerated() {
                        try client.send(Array("client \(index) round \(round)\n".utf8))
                    }
                }
                for (index, client) in clients.enumerated() {
                    let expected = (0..<20).map { "CLIENT \(index) ROUND \($0)\n" }.joined()
                    #expect(client.receive(count: expected.utf8.count) == Array(expected.utf8))
                }
                for client in clients.prefix(10) { client.close() }
                // Two audits of every loop after the traffic: each one clean.
                let loops = layout.loops
                let audited = waitUntil(timeout: .seconds(60)) {
                    (0..<loops).allSatisfy { loop in
                        server.errors.lines.filter { $0.contains("loop=\(loop)") && $0.contains("audit: clean") }.count
                            >= 2
                    }
                }
                #expect(audited, "no two clean audits of each loop; stderr: \(server.errors.text)")
                // Slow handlers are left out: a loop's thread that the machine
                // descheduled for 100 ms is one, and this machine is shared.
                let reports = server.errors.lines.filter {
                    $0.contains("busy loop") || ($0.contains("audit:") && !$0.contains("audit: clean"))
                }
                #expect(reports.isEmpty, "a healthy server was reported: \(reports)")
            }
        }

        @Test func withoutEpollTheAuditIsUnavailableAndSaysSo() throws {
            try withUpperEcho(["--diagnose", "--selector", "poll"]) { server, port in
                let client = try TestClient(port: port)
                #expect(client.roundTrip("poll"))
                #expect(
                    waitUntil { server.errors.text.contains("only the epoll backend can be audited") },
                    "stderr: \(server.errors.text)")
            }
        }
    }
}
