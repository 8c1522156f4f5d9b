import Foundation
import Syscalls
import TestSupport
import Testing

extension UpperEchoCLITests {
    @Suite struct Signals {
        /// The counters of the `stopped` line the server logs on standard error as it exits.
        static func finalStats(_ server: ServerProcess) -> [String: Int]? {
            guard waitUntil({ server.errors.reachedEnd }),
                let line = server.errors.lines.last(where: { $0.contains(" stopped open=") })
            else { return nil }
            return statsCounters(in: line)
        }

        @Test(arguments: [SIGTERM, SIGINT], ServerLayout.everyAPI)
        func underLoadASignalDeliversTheQueuedRepliesThenEndOfFileAndExits0(signal: CInt, layout: ServerLayout) throws {
            let server = try ServerProcess("upper-echo", ["--port", "0"] + layout.arguments + Self.longGrace)
            defer { server.stop() }
            let port = try #require(server.waitForPort())
            let clients = try (0..<4).map { try StreamingClient(index: $0, port: port) }
            try #require(
                waitUntil(timeout: .seconds(60)) { clients.allSatisfy { $0.received >= 256 * 1024 } },
                "the clients are not streaming")

            let start = ContinuousClock.now
            server.send(signal)
            #expect(server.waitForExit(timeout: .seconds(120)), "still running 120 s after signal \(signal)")
            print("upper-echo exited \(ContinuousClock.now - start) after signal \(signal) under load")
            #expect(server.exited(with: 0), "\(server.exitReport)")
            #expect(waitUntil(timeout: .seconds(60)) { clients.allSatisfy(\.isFinished) }, "a client is still running")
            for client in clients {
                #expect(client.ending == .endOfFile, "client \(client.index)")
                #expect(client.mismatch == nil, "client \(client.index): a reply byte is not bytes.upper()")
                #expect(client.received > 0 && client.received <= client.sent)
            }
            // Every byte the server wrote or queued reached its client.
            let stats = try #require(Self.finalStats(server), "stderr: \(server.errors.text)")
            #expect(stats["bytes_out"] == clients.reduce(0) { $0 + $1.received })
            #expect(stats["accepted"] == 4 && stats["open"] == 0)
            // One readable line: the message, then the counters as key=value pairs.
            let line = try #require(server.errors.lines.last { $0.contains(" stopped open=") })
            let format =
                /\S+ notice upper-echo: \[upper_echo\] stopped open=0 accepted=4 closed=4 refused=0( [a-z_]+=\d+)+/
            #expect(line.wholeMatch(of: format) != nil, "\(line)")
        }

        /// `--api async` runs as a ServiceGroup's service: the first signal is
        /// the group's graceful shutdown, which drains the loops, and the
        /// group ends once they have stopped.
        @Test(arguments: [ServerLayout.asyncOneLoop, .asyncAcceptor])
        func withTheAsyncAPIASignalIsTheServiceGroupsGracefulShutdown(layout: ServerLayout) throws {
            let server = try ServerProcess(
                "upper-echo", ["--port", "0", "--log-level", "debug"] + layout.arguments + Self.longGrace)
            defer { server.stop() }
            let port = try #require(server.waitForPort())
            let client = try TestClient(port: port)
            #expect(client.roundTrip("through a service group"))
            #expect(
                waitUntil { server.errors.text.contains("Starting service") }, "stderr: \(server.errors.text)")
            server.send(SIGTERM)
            // The drain sends the idle client its end of input; the client
            // closes, and the drain is over.
            #expect(client.receivesEndOfInput(), "the idle client got no end of input")
            client.close()
            #expect(server.waitForExit(timeout: .seconds(120)), "still running 120 s after SIGTERM")
            #expect(server.exited(with: 0), "\(server.exitReport)")
            let text = server.errors.text
            for step in ["Graceful shutdown caught", "shutting down", "Service finished", "Service lifecycle ended"] {
                #expect(text.contains(step), "no \"\(step)\" in stderr: \(text)")
            }
        }

        /// A grace long enough for any sanitizer build, for the tests that are
        /// not about the grace itself.
        static let longGrace = ["--shutdown-grace", "600"]

        /// Fills every buffer between `client` and `server` without reading:
        /// sends until nothing more goes in and the server reports that it
        /// queued at least `queued` bytes for a connection (so it has paused
        /// reading at its high-water mark). Returns how many bytes were sent,
        /// or `nil` if that did not happen within `timeout`.
        static func fillBuffers(
            _ client: TestClient, _ server: ServerProcess, queued: Int = 64 * 1024,
            timeout: Duration = .seconds(120), _ byte: (Int) -> UInt8
        ) -> Int? {
            let deadline = ContinuousClock.now + timeout
            var sent = 0
            while ContinuousClock.now < deadline {
                let base = sent
                sent += client.sendUntilStalled { byte(base + $0) }
                if let stats = server.stats(), stats["peak_queued"] ?? 0 >= queued { return sent }
            }
            return nil
        }

        /// The server has begun its shutdown: it logged the signal.
        static func waitForShutdownToStart(_ server: ServerProcess) -> Bool {
            waitUntil(timeout: .seconds(60)) {
                server.errors.lines.contains { $0.hasSuffix("shutting down") } || !server.process.isRunning
            }
        }

        /// Regression: a client that read its replies only after SIGTERM lost
        /// the ones queued in the server's kernel send buffer to a reset,
        /// because the server closed the socket with input still unread.
        @Test(arguments: ServerLayout.everyAPI)
        func repliesQueuedForAClientThatReadsOnlyAfterSIGTERMAreAllDelivered(layout: ServerLayout) throws {
            let server = try ServerProcess("upper-echo", ["--port", "0"] + layout.arguments + Self.longGrace)
            defer { server.stop() }
            let port = try #require(server.waitForPort())
            let client = try TestClient(port: port, timeout: .seconds(60))
            func byte(_ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: offset % 251) }

            let sent = try #require(
                Self.fillBuffers(client, server, byte), "the server never queued 64 KiB: the test would prove nothing")
            server.send(SIGTERM)
            // The client reads only once the server has started to close.
            try #require(Self.waitForShutdownToStart(server), "no shutdown line: \(server.errors.text)")

            var received = 0
            var mismatch: Int?
            let ending = client.receiveUntilEnd { offset, bytes in
                received = offset + bytes.count
                if mismatch == nil,
                    let bad = bytes.indices.first(where: { bytes[$0] != pythonUpper(byte(offset + $0)) })
                {
                    mismatch = offset + bad
                }
            }
            client.close()
            #expect(ending == .endOfFile)
            #expect(mismatch == nil, "reply byte \(mismatch ?? -1) is not bytes.upper() of the byte sent")
            #expect(server.waitForExit(timeout: .seconds(60)) && server.exited(with: 0), "\(server.exitReport)")
            let stats = try #require(Self.finalStats(server), "stderr: \(server.errors.text)")
            #expect(received == stats["bytes_out"], "sent \(sent), the server wrote \(stats["bytes_out"] ?? -1)")
        }

        /// The other side of the grace: a client that never reads its replies
        /// holds the shutdown for the grace and no longer. Then the server
        /// drops its replies and closes it, and still exits 0.
        @Test(arguments: ServerLayout.everyAPI)
        func aClientThatNeverReadsIsCutAtTheGraceAndTheServerExits0(layout: ServerLayout) throws {
            let grace = Duration.seconds(1)
            let server = try ServerProcess("upper-echo", ["--port", "0", "--shutdown-grace", "1"] + layout.arguments)
            defer { server.stop() }
            let port = try #require(server.waitForPort())
            let client = try TestClient(port: port, timeout: .seconds(60))
            try #require(
                Self.fillBuffers(client, server) { UInt8(truncatingIfNeeded: $0) } != nil,
                "the server never queued 64 KiB for the client")

            let signalled = ContinuousClock.now
            server.send(SIGTERM)
            #expect(server.waitForExit(timeout: .seconds(60)), "still running 60 s after SIGTERM")
            let took = ContinuousClock.now - signalled
            #expect(server.exited(with: 0), "\(server.exitReport)")
            #expect(took >= grace, "exited \(took) after SIGTERM, before the \(grace) grace was over")
            let stats = try #require(Self.finalStats(server), "stderr: \(server.errors.text)")
            #expect(stats["open"] == 0 && stats["closed"] == 1, "\(stats)")

            // What the client can still read ends in a reset, short of what
            // the server wrote: the rest was dropped at the grace.
            var received = 0
            let ending = client.receiveUntilEnd { offset, bytes in received = offset + bytes.count }
            client.close()
            #expect(ending == .reset, "the connection ended with \(ending), not a reset")
            #expect(received < stats["bytes_out"] ?? 0, "received \(received) of \(stats["bytes_out"] ?? -1)")
        }

        @Test(arguments: ServerLayout.everyAPI)
        func sighupPrintsAStatsLineAndTheServerKeepsRunning(layout: ServerLayout) throws {
            try withUpperEcho(layout: layout) { server, port in
                let client = try TestClient(port: port)
                #expect(client.roundTrip("hello"))
                let first = try #require(server.stats())
                let line = try #require(server.output.lines.last)
                let format =
                    /stats open=\d+ accepted=\d+ closed=\d+ refused=\d+ idle_closed=\d+ resets=\d+ probe_resets=\d+ bytes_in=\d+ bytes_out=\d+ peak_queued=\d+ accept_pauses=\d+/
                #expect(line.wholeMatch(of: format) != nil, "\(line)")
                #expect(first["open"] == 1 && first["accepted"] == 1 && first["closed"] == 0)
                #expect(first["bytes_in"] == 5 && first["bytes_out"] == 5)

                client.close()
                let second = try TestClient(port: port)
                #expect(second.roundTrip("world!"), "the server stopped serving after SIGHUP")
                #expect(waitUntil { server.stats()?["closed"] == 1 })
                let after = try #require(server.stats())
                #expect(after["open"] == 1 && after["accepted"] == 2)
                #expect(after["bytes_in"] == 11 && after["bytes_out"] == 11)
                #expect(server.output.lines.first?.hasPrefix("listening on") == true)
                // Three reports: with two loops, each a `loop=K` line per loop, then the totals.
                let perReport = layout.loops == 1 ? ["stats "] : ["loop=0 ", "loop=1 ", "stats "]
                let reports = Array(server.output.lines.dropFirst())
                #expect(reports.count == 3 * perReport.count, "\(reports)")
                for (index, line) in reports.enumerated() {
                    #expect(line.hasPrefix(perReport[index % perReport.count]), "\(line)")
                }
                if layout.loops > 1 {
                    // The loops' lines add up to the totals that follow them.
                    let last = reports.suffix(3).map { statsCounters(in: $0[...]) }
                    for key in ["accepted", "open", "closed", "bytes_in", "bytes_out"] {
                        #expect(
                            (last[0][key] ?? -1) + (last[1][key] ?? -1) == last[2][key], "\(key): \(reports.suffix(3))")
                    }
                }
            }
        }
    }
}
