import Foundation
import Syscalls
import TestSupport
import Testing

extension ReliabilityTests {
    /// Scenario 8. With `--max-connections 6000 --idle-timeout 2`, 5,000
    /// connections that send nothing (slowloris) do not stop new clients
    /// from being served, and each idle one is closed, not before the idle
    /// timeout (less 5 %) after it connected, and `idle_closed` counts
    /// exactly them. Soak: 10,000 idle connections under `--max-connections
    /// 12000 --idle-timeout 5`, 1,000 new clients. Under a sanitizer the idle
    /// timeout is 10 s, so that connecting the idle ones and serving the new
    /// ones, which take it a second or more, end well before it.
    @Test(arguments: ServerLayout.everyAPI)
    func limitsAgainstAbuseIdleConnectionsDoNotStopNewClients(layout: ServerLayout) throws {
        let idleCount = Soak.pick(short: 5000, soak: 10_000)
        let maxConnections = Soak.pick(short: 6000, soak: 12_000)
        let idleTimeout = Soak.pick(short: Sanitizer.isActive ? 10.0 : 2.0, soak: Sanitizer.isActive ? 10.0 : 5.0)
        let newClients = Soak.pick(short: 100, soak: 1000)
        _ = system_setrlimit_raise_nofile()
        let server = try ServerProcess.upperEcho(
            layout.arguments + [
                "--max-connections", "\(maxConnections)", "--idle-timeout", "\(idleTimeout)", "--backlog", "4096",
            ])
        defer { server.stop() }
        let port = server.port

        var idle: [(client: Client, connected: ContinuousClock.Instant)] = []
        idle.reserveCapacity(idleCount)
        // Each dated from before its connect: the server's idle timer starts later, at the accept.
        for _ in 0..<idleCount {
            let connecting = ContinuousClock.now
            idle.append((try Client(port: port), connecting))
        }
        let connectTook = ContinuousClock.now - idle[0].connected

        // New clients, one after another, while every idle one is still connected.
        var slowest = Duration.zero
        var served = 0
        for index in 0..<newClients {
            let start = ContinuousClock.now
            let client = try Client(port: port)
            if client.roundTrip("new client \(index) among the idle ones") { served += 1 }
            client.close()
            slowest = max(slowest, ContinuousClock.now - start)
        }
        let during = try #require(server.stats())
        let stillConnected = ContinuousClock.now < idle[0].connected + .seconds(idleTimeout)
        #expect(served == newClients, "only \(served) of \(newClients) new clients served")
        #expect(
            stillConnected && during["open"] ?? 0 >= idleCount,
            "the idle ones were gone already (the idle timeout passed during the new clients): \(during)")
        #expect(during["refused"] == 0, "\(during)")

        let closedAfter = Self.waitForEndOfFile(idle, deadline: .seconds(idleTimeout + 60))
        let ended = closedAfter.compactMap { $0 }
        #expect(
            ended.count == idleCount,
            "\(idleCount - ended.count) idle connections not closed with end of file within 60 s of the timeout")
        let earliest = ended.min() ?? .zero
        let latest = ended.max() ?? .zero
        // The server dates a connection from the start of the loop iteration
        // that accepted it, which may come before the connect by as long as
        // that iteration took: 5 % of the timeout for it.
        #expect(earliest >= .seconds(idleTimeout * 0.95), "an idle connection closed early, after \(earliest)")
        let stats = try #require(server.stats())
        #expect(stats["idle_closed"] == idleCount && stats["open"] == 0, "\(stats)")
        #expect(server.isRunning, "upper-echo died: \(server.child.errors.text.suffix(500))")
        figure(
            "limits (\(layout))",
            "max_connections=\(maxConnections) idle_timeout=\(idleTimeout)s idle=\(idleCount) (connected in"
                + " \(Int(seconds(connectTook) * 1000)) ms) new_clients_served=\(served)/\(newClients)"
                + " (slowest \(fixed(seconds(slowest) * 1000, 1)) ms, open=\(during["open"] ?? -1) meanwhile)"
                + " idle_closed_after=\(fixed(seconds(earliest), 3))..\(fixed(seconds(latest), 3))s"
                + " idle_closed=\(stats["idle_closed"] ?? -1) refused=\(stats["refused"] ?? -1)"
        )
    }

    /// Polls every connection until it reads end of file or `deadline` (from
    /// the first connection) passes; returns, for each, how long after it
    /// connected the end of file came, or `nil` (none, or a reset).
    static func waitForEndOfFile(
        _ connections: [(client: Client, connected: ContinuousClock.Instant)], deadline: Duration
    ) -> [Duration?] {
        var closedAfter = [Duration?](repeating: nil, count: connections.count)
        var pending = connections.map { pollfd(fd: $0.client.fd, events: Int16(POLLIN), revents: 0) }
        let end = connections[0].connected + deadline
        var remaining = connections.count
        while remaining > 0, ContinuousClock.now < end {
            let ready = pending.withUnsafeMutableBufferPointer {
                system_poll($0.baseAddress, $0.count, timeoutMilliseconds: 50)
            }
            guard case .success(let count) = ready, count > 0 else { continue }
            let now = ContinuousClock.now
            for index in pending.indices where pending[index].fd >= 0 && pending[index].revents != 0 {
                if connections[index].client.streamEnding() == .endOfFile {
                    closedAfter[index] = now - connections[index].connected
                }
                pending[index].fd = -1  // poll ignores negative descriptors
                remaining -= 1
            }
        }
        return closedAfter
    }
}
