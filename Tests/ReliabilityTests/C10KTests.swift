import Foundation
import TestSupport
import Testing

extension ReliabilityTests {
    /// Scenario 1. 10,000 concurrent clients, in an `echo-load` process, keep
    /// a message in flight each for the whole window; echo-load checks every
    /// byte of every reply and exits 1 on any mismatch, reset, unexpected
    /// end of file or failed connect.
    @Test(arguments: ServerLayout.everyAPI)
    func c10kTenThousandClientsEveryByteVerified(layout: ServerLayout) throws {
        let connections = 10_000
        // Under a sanitizer replies take up to seconds (p99 0.77 s under TSan
        // with the suite beside it), so a 2 s window could close on a
        // connection whose one message was merely slow: the window is longer
        // there, so that `min_conn_msgs` still means starvation.
        var duration = Soak.pick(short: Sanitizer.isActive ? 6 : 2, soak: 30)
        let server = try ServerProcess.upperEcho(layout.arguments + ["--backlog", "4096"])
        defer { server.stop() }
        let baselineKilobytes = try #require(server.residentKilobytes())
        // A window that held fewer than `enough` replies per connection on
        // average (the machine or the suite beside it slow) cannot tell a
        // connection starved from one whose reply was merely slow: when one
        // had none, run again with a window twice as long, up to `longest`.
        let enough = 8.0
        let longest = Soak.pick(short: 4 * duration, soak: duration)
        var load: EchoLoadProcess
        var report: [String: Any]
        // The server's resets before the run that counts: a run made again
        // ended its unanswered connections, which the server may count as
        // reset. Read once everything of the run before is closed.
        var resetsBefore = 0
        while true {
            try #require(
                waitUntil(timeout: .seconds(120)) { server.stats()?["open"] == 0 },
                "the connections of the run before are still open: \(server.stats() ?? [:])")
            resetsBefore = try #require(server.stats()?["resets"])
            load = try EchoLoadProcess(
                port: server.port,
                [
                    "--connections", "\(connections)", "--size", "64", "--pipeline", "1",
                    "--duration", "\(duration)", "--warmup", "1", "--server-pid", "\(server.pid)",
                ])
            // Connecting 10,000 takes a few seconds, the first replies may take up
            // to --first-reply-timeout (30 s); the measured window follows.
            let exited = load.child.waitForExit(timeout: .seconds(Int64(duration) + 120))
            if !exited { load.child.kill() }
            try #require(exited, "echo-load still running; stderr: \(load.child.errors.text.suffix(500))")
            report = try #require(load.report(), "no JSON report; stderr: \(load.child.errors.text.suffix(500))")
            let perConnection = (EchoLoadProcess.number(report, "messages") ?? 0) / Double(connections)
            let least = EchoLoadProcess.number(report, "min_conn_msgs") ?? 0
            // Only a clean run is made again: an error fails the test at once.
            guard load.child.exited(with: 0) && least < 1 && perConnection < enough && duration < longest else { break }
            print(
                "c10k: a \(duration) s window held \(fixed(perConnection)) replies per connection, the least"
                    + " served \(Int(least)): too few to tell starvation from a slow reply;"
                    + " again with \(2 * duration) s")
            duration *= 2
        }
        func value(_ key: String) -> Double { EchoLoadProcess.number(report, key) ?? -1 }

        #expect(load.child.exited(with: 0), "echo-load: \(load.child.termination); \(report)")
        for key in ["mismatches", "resets", "unexpected_eofs", "failed_connects", "unanswered"] {
            #expect(value(key) == 0, "\(key) = \(value(key))")
        }
        #expect(value("connections") == Double(connections))
        // Every one of the 10,000 connections had replies counted in the window.
        #expect(
            value("min_conn_msgs") >= 1,
            "a connection got no reply in the window (slowest reply: \(Int(value("max_us"))) µs)")
        #expect(value("server_rss_kb") > 0, "no server RSS reported")
        #expect(server.isRunning, "upper-echo died: \(server.child.errors.text.suffix(500))")
        let stats = try #require(server.stats())
        #expect(stats["accepted"] ?? 0 >= connections)
        #expect(stats["resets"] == resetsBefore, "the server saw \((stats["resets"] ?? 0) - resetsBefore) resets")
        figure(
            "c10k (\(layout))",
            "connections=\(connections) duration=\(fixed(value("duration_s"), 1))s messages=\(Int(value("messages")))"
                + " msgs_per_s=\(Int(value("msgs_per_s"))) p99_us=\(Int(value("p99_us")))"
                + " min_conn_msgs=\(Int(value("min_conn_msgs"))) errors=0"
                + " server_rss_kb=\(Int(value("server_rss_kb"))) server_peak_rss_kb=\(Int(value("server_peak_rss_kb")))"
                + " baseline_rss_kb=\(baselineKilobytes) server_cpu_percent=\(value("server_cpu_percent"))"
                + " echo_load_exit=\(load.child.process.terminationStatus) server_alive=\(server.isRunning)"
        )
    }
}
