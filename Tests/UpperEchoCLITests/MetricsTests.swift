import Foundation
import Syscalls
import TestSupport
import Testing
import UpperEcho

extension UpperEchoCLITests {
    /// `--metrics-port`: a real scrape of a real upper-echo, parsed by
    /// Python's `prometheus_client`, and the endpoint under bad requests.
    @Suite struct Metrics {
        /// K connections, each sending a known number of bytes and getting
        /// them all back, then closing: the scrape adds up to exactly that,
        /// over every loop, while they are open and once they are closed.
        @Test(
            "a scrape after a scripted run counts exactly its connections and bytes", arguments: ServerLayout.everyAPI)
        func aScrapeAfterAScriptedRunCountsExactlyItsConnectionsAndBytes(layout: ServerLayout) throws {
            try withUpperEcho(["--metrics-port", "0"], layout: layout) { server, port in
                let metricsPort = try #require(waitForMetricsPort(server), "no `metrics on` line")
                let count = 12
                // Client i sends 1,000 + 37 i bytes, in chunks of up to 400.
                let sizes = (0..<count).map { 1000 + 37 * $0 }
                let total = sizes.reduce(0, +)
                var clients: [TestClient] = []
                for (index, size) in sizes.enumerated() {
                    let client = try TestClient(port: port)
                    let payload = (0..<size).map { UInt8(truncatingIfNeeded: 0x41 + ($0 + index) % 58) }
                    var offset = 0
                    while offset < size {
                        let end = min(offset + 400, size)
                        try client.send(payload[offset..<end])
                        #expect(client.receive(count: end - offset) == pythonUpper(Array(payload[offset..<end])))
                        offset = end
                    }
                    clients.append(client)
                }

                // All open: the scrape is exact, though no flush timer may have run.
                let whileOpen = try scrape(metricsPort)
                #expect(whileOpen.sum(.connectionsOpen) == Double(count))
                #expect(whileOpen.sum(.connectionsAccepted) == Double(count))
                #expect(whileOpen.sum(.bytesReceived) == Double(total))
                #expect(whileOpen.sum(.bytesSent) == Double(total))

                for client in clients {
                    try client.shutdownWrite()
                    #expect(client.receivesEndOfInput())
                    client.close()
                }
                let closed = waitUntil(timeout: .seconds(60)) {
                    guard let stats = server.stats() else { return false }
                    return stats["closed"] == count && stats["open"] == 0
                }
                try #require(closed, "the server never saw all \(count) connections closed: \(server.stats() ?? [:])")

                let samples = try scrape(metricsPort)
                #expect(samples.sum(.connectionsAccepted) == Double(count))
                #expect(samples.sum(.connectionsClosed) == Double(count))
                #expect(samples.sum(.bytesReceived) == Double(total))
                #expect(samples.sum(.bytesSent) == Double(total))
                #expect(samples.sum(.connectionsOpen) == 0)
                #expect(samples.sum(.connectionsReset) == 0)
                #expect(samples.sum(.probeResets) == 0)
                #expect(samples.sum(.connectionsRefused) == 0)
                #expect(samples.sum(.acceptPauses) == 0)

                // Every metric, for every loop, with its type.
                let loops = layout.loops
                for name in UpperEchoMetrics.Name.allCases {
                    let found = samples.filter { $0.name == name.rawValue }
                    #expect(
                        Set(found.compactMap { $0.labels["loop"] }) == Set((0..<loops).map { "\($0)" }),
                        "\(name.rawValue): \(found)")
                    let type = name == .connectionsOpen ? "gauge" : "counter"
                    #expect(found.allSatisfy { $0.type == type }, "\(name.rawValue) is not a \(type): \(found)")
                }
                for loop in 0..<loops {
                    let iterations = samples.first {
                        $0.name == "reactor_loop_iterations_total" && $0.labels["loop"] == "\(loop)"
                    }
                    #expect(
                        (iterations?.value ?? 0) > 0, "loop \(loop) ran no iteration: \(String(describing: iterations))"
                    )
                }
                #expect(samples.sum(.loopEvents) > 0)
                #expect(samples.sum(.loopBusySeconds) > 0)
                #expect(!server.errors.text.contains("ThreadSanitizer"), "\(server.errors.text)")
            }
        }

        /// Bad requests get their status and a closed connection, a slow
        /// head gets 408, connections beyond the limit are closed, the
        /// process survives, and all along an echo client gets every reply.
        @Test(arguments: ServerLayout.everyAPI)
        func theEndpointAnswersBadRequestsWithTheirStatusWhileTheEchoGoesOn(layout: ServerLayout) throws {
            try withUpperEcho(["--metrics-port", "0"], layout: layout) { server, port in
                let metricsPort = try #require(waitForMetricsPort(server), "no `metrics on` line")
                let echo = try EchoWhileTesting(port: port)
                defer { echo.stop() }

                // 16 connections at once, each silent: a 17th is closed at
                // once, without a byte. Each silent one is answered 408 10 s
                // after it came; if the machine took nearly that long to
                // open them all, the limit may not have held: try again.
                var limitChecked = false
                for _ in 0..<3 where !limitChecked {
                    let start = ContinuousClock.now
                    var silent: [TestClient] = []
                    for _ in 0..<16 { silent.append(try TestClient(port: metricsPort)) }
                    let extraClient = try TestClient(port: metricsPort)
                    let opened = ContinuousClock.now - start
                    let extra = exchange(on: extraClient, [])
                    if opened < .seconds(8) {
                        #expect(extra.bytes.isEmpty && extra.ending != .timedOut, "\(extra)")
                        limitChecked = true
                    }
                    for client in silent { client.close() }
                }
                #expect(limitChecked, "16 connections could not be opened within the endpoint's 10 s, 3 times")
                // Once the server has seen them go, a scrape is served again.
                let served = waitUntil(timeout: .seconds(60)) { (try? httpGet(metricsPort, "/metrics"))?.status == 200 }
                #expect(served, "no scrape was served after the silent connections closed")

                // A head that never ends: 408 once the endpoint's 10 s are up.
                let slow = try TestClient(port: metricsPort, timeout: .seconds(120))
                try slow.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")

                let requests: [(request: [UInt8], status: Int)] = [
                    (Array("garbage\r\n\r\n".utf8), 400),
                    ([0, 1, 2, 0xFF, 0x0D, 0x0A, 0x0D, 0x0A], 400),
                    (Array("GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n".utf8), 400),
                    (Array("GET /metrics HTTP/2.0\r\n\r\n".utf8), 505),
                    (Array("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".utf8), 405),
                    (Array("DELETE /metrics HTTP/1.1\r\n\r\n".utf8), 405),
                    (Array("GET /other HTTP/1.1\r\n\r\n".utf8), 404),
                    (
                        Array(
                            ("GET /metrics HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 9000) + "\r\n\r\n").utf8
                        ), 431
                    ),
                    (Array(String(repeating: "G", count: 20000).utf8), 431),
                ]
                for (request, status) in requests {
                    let client = try TestClient(port: metricsPort)
                    let reply = exchange(on: client, request)
                    let text = String(decoding: request.prefix(40), as: UTF8.self)
                    #expect(reply.status == status, "\(text): \(reply)")
                    #expect(reply.ending == .endOfFile, "\(text): the connection was not closed: \(reply)")
                    #expect(reply.header("Content-Length") == "\(reply.body.count)", "\(text): \(reply)")
                    if status == 405 { #expect(reply.header("Allow") == "GET", "\(reply)") }
                }

                let late = exchange(on: slow, [])
                #expect(late.status == 408, "\(late)")
                #expect(late.ending == .endOfFile, "\(late)")

                let after = try httpGet(metricsPort, "/metrics")
                #expect(after.status == 200)
                #expect(after.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
                #expect(try parsePrometheus(after.body).contains { $0.name == "upper_echo_connections_accepted_total" })

                let (replies, failures) = echo.stop()
                #expect(failures == 0, "the echo client missed \(failures) replies")
                #expect(replies > 0)
                #expect(!server.errors.text.contains("ThreadSanitizer"), "\(server.errors.text)")
            }
        }

        /// The metrics port in use, by another socket: one line on standard
        /// error naming `--metrics-port`, exit status 1.
        @Test(arguments: ServerLayout.everyAPI)
        func aMetricsPortInUseIsOneLineOnStandardErrorAndExitStatus1(layout: ServerLayout) throws {
            let type = CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)
            let holder = try system_socket(AF_INET, type).get()
            defer { _ = system_close(holder) }
            try system_bind(holder, SocketAddress(host: "127.0.0.1", port: 0)!).get()
            try system_listen(holder, 1).get()
            let taken = try system_getsockname(holder).get().port

            let server = try ServerProcess(
                "upper-echo", ["--port", "0", "--metrics-port", "\(taken)"] + layout.arguments)
            defer { server.stop() }
            try #require(server.waitForExit(), "upper-echo is still running with its metrics port in use")
            #expect(server.exited(with: 1))
            #expect(waitUntil { server.errors.reachedEnd && server.output.reachedEnd })
            let message = server.errors.text
            #expect(message.lowercased().contains("address already in use"), "\(message)")
            #expect(message.contains("127.0.0.1:\(taken) for --metrics-port"), "\(message)")
            #expect(server.errors.lines.count == 1, "not one line: \(message)")
            #expect(!server.output.text.contains("metrics on"))
        }

        @Test func aMetricsPortEqualToThePortIsAUsageError() throws {
            let server = try ServerProcess("upper-echo", ["--port", "8123", "--metrics-port", "8123"])
            defer { server.stop() }
            try #require(server.waitForExit())
            #expect(server.exited(with: 64))
            #expect(waitUntil { server.errors.reachedEnd })
            #expect(server.errors.text.contains("--metrics-port must differ from --port"), "\(server.errors.text)")
        }

        @Test func withoutTheFlagThereIsNoMetricsLine() throws {
            try withUpperEcho { server, port in
                let client = try TestClient(port: port)
                #expect(client.roundTrip("no metrics"))
                #expect(server.output.lines == ["listening on 127.0.0.1:\(port) (epoll)"])
            }
        }
    }
}

// MARK: - Helpers

/// Waits (bounded) for the `metrics on 127.0.0.1:PORT` line, which follows
/// the listening line.
private func waitForMetricsPort(_ server: ServerProcess) -> UInt16? {
    var port: UInt16?
    _ = waitUntil(timeout: .seconds(60)) {
        let line = server.output.lines.first { $0.hasPrefix("metrics on 127.0.0.1:") }
        port = line.flatMap { UInt16($0.dropFirst("metrics on 127.0.0.1:".count)) }
        return port != nil || !server.isRunning
    }
    return port
}

/// An HTTP reply as it came, and how the connection ended after it.
private struct HTTPReply: CustomStringConvertible {
    var bytes: [UInt8]
    var ending: Ending

    private var split: (head: [Substring], body: [UInt8])? {
        let separator = Array("\r\n\r\n".utf8)
        guard let at = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else { return nil }
        let head = String(decoding: bytes[..<at], as: UTF8.self)
        return (head.split(separator: "\r\n", omittingEmptySubsequences: false), Array(bytes[(at + 4)...]))
    }

    /// The status code; 0 if the reply has none.
    var status: Int {
        guard let line = split?.head.first, line.hasPrefix("HTTP/1.1 ") else { return 0 }
        return Int(line.split(separator: " ")[1]) ?? 0
    }

    /// The first header named `name` (case-insensitive), trimmed.
    func header(_ name: String) -> String? {
        for line in split?.head.dropFirst() ?? [] {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == name.lowercased() {
                return parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    var body: [UInt8] { split?.body ?? [] }

    var description: String {
        "\(bytes.count) bytes, \(ending): \(String(decoding: bytes.prefix(300), as: UTF8.self).debugDescription)"
    }
}

/// Sends `request` on `client`, then reads until the server closes.
private func exchange(on client: TestClient, _ request: [UInt8]) -> HTTPReply {
    if !request.isEmpty { try? client.send(request) }
    var bytes: [UInt8] = []
    let ending = client.receiveUntilEnd { _, chunk in bytes += chunk }
    return HTTPReply(bytes: bytes, ending: ending)
}

/// `GET path` on a new connection.
private func httpGet(_ port: UInt16, _ path: String) throws -> HTTPReply {
    let client = try TestClient(port: port)
    return exchange(on: client, Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
}

/// Scrapes `/metrics` and parses it; the reply must be a 200 with the right
/// type and length.
private func scrape(_ port: UInt16) throws -> [PrometheusSample] {
    let reply = try httpGet(port, "/metrics")
    #expect(reply.status == 200, "\(reply)")
    #expect(reply.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
    #expect(reply.header("Content-Length") == "\(reply.body.count)")
    return try parsePrometheus(reply.body)
}

/// One sample, as `prometheus_client` parsed it.
private struct PrometheusSample: Decodable {
    var family: String
    var type: String
    var name: String
    var labels: [String: String]
    var value: Double
}

extension [PrometheusSample] {
    /// The values of `name`'s samples added up, over the loops.
    fileprivate func sum(_ name: UpperEchoMetrics.Name) -> Double {
        filter { $0.name == name.rawValue }.reduce(0) { $0 + $1.value }
    }
}

/// The exposition `text` parsed by Python's `prometheus_client`
/// (`text_string_to_metric_families`), run as a subprocess.
private func parsePrometheus(_ text: [UInt8]) throws -> [PrometheusSample] {
    let script = """
        import json, sys
        from prometheus_client.parser import text_string_to_metric_families
        samples = [
            {"family": f.name, "type": f.type, "name": s.name, "labels": s.labels, "value": s.value}
            for f in text_string_to_metric_families(sys.stdin.read())
            for s in f.samples
        ]
        json.dump(samples, sys.stdout)
        """
    let python = try pythonWithPrometheusClient()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [python, "-c", script]
    let input = Pipe()
    let output = Pipe()
    let errors = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    try input.fileHandleForWriting.write(contentsOf: Data(text))
    try input.fileHandleForWriting.close()
    let json = output.fileHandleForReading.readDataToEndOfFile()
    let failure = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw SpawnError(
            description: "prometheus_client rejected the scrape: \(String(decoding: failure, as: UTF8.self))")
    }
    return try JSONDecoder().decode([PrometheusSample].self, from: json)
}

/// The first of `python3` (from `PATH`) and `/usr/bin/python3` that can
/// import `prometheus_client` (Debian's `python3-prometheus-client`).
private func pythonWithPrometheusClient() throws -> String {
    for candidate in ["python3", "/usr/bin/python3"] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [candidate, "-c", "import prometheus_client.parser"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { continue }
        process.waitUntilExit()
        if process.terminationStatus == 0 { return candidate }
    }
    throw SpawnError(
        description: "no python3 with prometheus_client: apt-get install python3-prometheus-client")
}

/// An echo client that makes round trips on its own thread until stopped,
/// counting the replies it got right and those it did not.
private final class EchoWhileTesting: Sendable {
    private let client: TestClient
    private let replies = Counter()
    private let failures = Counter()
    private let stopping = Counter()
    private let finished = Counter()

    init(port: UInt16) throws {
        client = try TestClient(port: port)
        let thread = Thread { [self] in
            var index = 0
            while stopping.current == 0 {
                if client.roundTrip("round trip \(index) during the metrics test\n") {
                    replies.add(1)
                } else {
                    failures.add(1)
                }
                index += 1
            }
            finished.add(1)
        }
        thread.start()
    }

    /// Stops the round trips, once the one under way has ended; returns the
    /// replies and the failures. Later calls return the same.
    @discardableResult
    func stop() -> (replies: Int, failures: Int) {
        stopping.add(1)
        _ = waitUntil(timeout: .seconds(60)) { finished.current > 0 }
        return (replies.current, failures.current + (finished.current > 0 ? 0 : 1))
    }
}
