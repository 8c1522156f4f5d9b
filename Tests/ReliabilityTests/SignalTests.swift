import Foundation
import TestSupport
import Testing

extension ReliabilityTests {
    /// Scenario 6. SIGTERM, then SIGINT, under heavy load: `echo-load` keeps
    /// 1,000 connections with 16 messages in flight each; once every
    /// connection has turned its pipeline over many times, the signal comes,
    /// and the server must deliver what it can, close every connection, and
    /// exit 0 by itself (within a deadline far above its shutdown grace,
    /// which bounds the drain). (That a signal arriving while `Epoll.poll`
    /// waits never surfaces as an error is LinuxEpollTests' InterruptTests.)
    @Test(arguments: [SIGTERM, SIGINT], ServerLayout.everyAPI)
    func signalUnderHeavyLoadClosesEveryConnectionAndExits0(signal: CInt, layout: ServerLayout) throws {
        let connections = 1000
        let server = try ServerProcess.upperEcho(layout.arguments + ["--backlog", "1024"])
        defer { server.stop() }
        let load = try EchoLoadProcess(
            port: server.port,
            [
                "--connections", "\(connections)", "--pipeline", "16", "--size", "64", "--duration", "120",
                "--warmup", "0",
            ])
        defer { load.child.kill() }
        try #require(
            waitUntil(timeout: .seconds(30)) { server.stats()?["open"] == connections },
            "echo-load did not connect: \(load.child.errors.text.suffix(300))")
        // Drive the load until every connection's pipeline has turned over
        // `rounds` times on average (a volume, not a rate), then signal in
        // the middle of it.
        let rounds = Soak.pick(short: 10, soak: 500)
        let before = try #require(server.stats()?["bytes_in"])
        let measuring = ContinuousClock.now
        var during: [String: Int] = [:]
        let loaded = waitUntil(timeout: .seconds(120)) {
            during = server.stats() ?? during
            return (during["bytes_in"] ?? 0) - before >= rounds * connections * 16 * 64
        }
        let window = ContinuousClock.now - measuring
        try #require(loaded, "echo-load moved too little in 120 s: \(during)")
        let messagesPerSecond = Double((during["bytes_in"] ?? 0) - before) / 64 / seconds(window)
        #expect(load.child.isRunning)

        let start = ContinuousClock.now
        server.child.send(signal)
        let exited = server.child.waitForExit(timeout: .seconds(120))
        let took = ContinuousClock.now - start
        #expect(exited, "still running 120 s after signal \(signal)")
        #expect(server.child.exited(with: 0), "upper-echo: \(server.child.exitReport)")
        let final = try #require(server.finalStats(), "no stopped line: \(server.child.errors.text.suffix(300))")
        #expect(final["open"] == 0, "\(final)")
        let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
        figure(
            "signals (\(layout))",
            "\(name) under load of \(connections) connections x pipeline 16"
                + " (\(Int(messagesPerSecond)) msgs/s over \(fixed(seconds(window), 1)) s):"
                + " \(server.child.termination) after \(Int(seconds(took) * 1000)) ms;"
                + " final accepted=\(final["accepted"] ?? -1) closed=\(final["closed"] ?? -1)"
        )
    }
}
