import Foundation
import Testing

extension ReliabilityTests {
    /// Scenario 6. SIGTERM, then SIGINT, under heavy load: `echo-load` keeps
    /// 1,000 connections with 16 messages in flight each; the server must
    /// deliver what it can, close, and exit 0 within 2 s. (That a signal
    /// arriving while `Epoll.poll` waits never surfaces as an error is
    /// LinuxEpollTests' InterruptTests.)
    @Test(arguments: [SIGTERM, SIGINT])
    func signalUnderHeavyLoadExits0Within2Seconds(signal: CInt) throws {
        let connections = 1000
        let server = try ServerProcess(["--backlog", "1024"])
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
        // Measure the load for a while, then signal in the middle of it.
        let before = try #require(server.stats()?["bytes_in"])
        let window = Soak.pick(short: Duration.seconds(1), soak: .seconds(20))
        Thread.sleep(forTimeInterval: seconds(window))
        let during = try #require(server.stats())
        let messagesPerSecond = Double((during["bytes_in"] ?? 0) - before) / 64 / seconds(window)
        #expect(messagesPerSecond > 1000, "no heavy load: \(during)")
        #expect(load.child.isRunning)

        let start = ContinuousClock.now
        server.child.send(signal)
        let exited = server.child.waitForExit(timeout: .seconds(2))
        let took = ContinuousClock.now - start
        #expect(exited, "still running 2 s after signal \(signal)")
        #expect(server.child.exited(with: 0), "upper-echo: \(server.child.termination)")
        let final = try #require(server.finalStats(), "no stopped line: \(server.child.errors.text.suffix(300))")
        #expect(final["open"] == 0, "\(final)")
        let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
        figure(
            "signals",
            "\(name) under load of \(connections) connections x pipeline 16"
                + " (\(Int(messagesPerSecond)) msgs/s over \(fixed(seconds(window), 0)) s):"
                + " \(server.child.termination) after \(Int(seconds(took) * 1000)) ms;"
                + " final accepted=\(final["accepted"] ?? -1) closed=\(final["closed"] ?? -1)"
        )
    }
}
