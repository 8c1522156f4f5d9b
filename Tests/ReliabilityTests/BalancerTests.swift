import CEpollShim
import Foundation
import Syscalls
import TestSupport
import Testing

/// upper-echo behind a real HAProxy, configured by `deploy/haproxy.cfg`: two
/// instances on 127.0.0.1, health-checked through the service itself, and
/// drained one at a time under load (docs/DEPLOYMENT.md).
@Suite(
    "upper-echo behind HAProxy", .serialized, .timeLimit(.minutes(3)),
    .enabled(if: Cluster.haproxyPath != nil, "haproxy is not installed (apt-get install haproxy; .ci/run installs it)"))
struct BalancerTests {
    @Test("both backends come UP through the service's own check, after at most 2 checks; checks are no client resets")
    func backendsComeUpThroughTheirCheck() throws {
        let cluster = try Cluster()
        defer { cluster.stop() }
        var checks: [Int] = []
        for (index, name) in ["s1", "s2"].enumerated() {
            #expect(cluster.waitUntilUp(name), "\(name) never came UP: \(cluster.serverStat()[name] ?? [:])")
            // Read after HAProxy said UP: an upper bound of the checks it took.
            let stats = try #require(cluster.backends[index].stats())
            checks.append(stats["accepted"] ?? -1)
            #expect((1...2).contains(stats["accepted"] ?? -1), "\(name) took \(stats["accepted"] ?? -1) checks")
        }
        let stat = cluster.serverStat()
        for name in ["s1", "s2"] {
            #expect(stat[name]?["check_status"] == "L7OK", "\(stat[name] ?? [:])")
            #expect(stat[name]?["chkfail"] == "0", "\(stat[name] ?? [:])")
        }
        // A few more checks: each one connects, sends ping, reads PING, resets.
        for backend in cluster.backends {
            #expect(waitUntil(timeout: .seconds(60)) { (backend.stats()?["accepted"] ?? 0) >= 3 })
            let stats = try #require(backend.stats())
            #expect(stats["resets"] == 0, "health checks counted as client resets: \(stats)")
            #expect(stats["probe_resets"] == stats["closed"] && (stats["closed"] ?? 0) >= 2, "\(stats)")
            // Each check sent "ping\n": 5 bytes per closed one, at most 5 per open one.
            let bytesIn = stats["bytes_in"] ?? -1
            #expect(bytesIn >= 5 * (stats["closed"] ?? 0) && bytesIn <= 5 * (stats["accepted"] ?? 0), "\(stats)")
            #expect(stats["bytes_out"] == bytesIn, "\(stats)")
        }
        figure("haproxy-checks", "checks_until_up=\(checks) interval=1s rise=2")
    }

    @Test("echo-load through HAProxy: every byte checked, 0 errors, both backends served")
    func loadThroughTheBalancer() throws {
        let cluster = try Cluster()
        defer { cluster.stop() }
        #expect(cluster.waitUntilUp("s1") && cluster.waitUntilUp("s2"))
        let before = cluster.backends.map { $0.stats()?["bytes_in"] ?? 0 }
        let report = try runLoad(
            port: cluster.port, ["--connections", "20", "--pipeline", "4", "--warmup", "0.2", "--duration", "2"])
        #expect(errorCount(report) == 0, "\(report)")
        #expect(value(report, "messages") > 0)
        for (index, backend) in cluster.backends.enumerated() {
            let served = (backend.stats()?["bytes_in"] ?? 0) - before[index]
            #expect(served > 64 * 1000, "backend s\(index + 1) served \(served) bytes")
        }
    }

    @Test("three drains in a row under short-connection load (SIGTERM, restart, UP, next): 0 failed connections")
    func drainsUnderShortConnections() throws {
        let cluster = try Cluster()
        defer { cluster.stop() }
        #expect(cluster.waitUntilUp("s1") && cluster.waitUntilUp("s2"))
        var figures: [String] = []
        for (round, index) in [0, 1, 0].enumerated() {
            let name = "s\(index + 1)"
            let load = try EchoLoadProcess(
                port: cluster.port,
                ["--connections", "4", "--connection-lifetime", "1", "--warmup", "0", "--duration", "3"])
            // Drain in the middle of the load, once this backend is serving it.
            let start = cluster.sessionsTotal(name)
            #expect(waitUntil(timeout: .seconds(60)) { cluster.sessionsTotal(name) >= start + 100 })
            let drained = try cluster.drain(index)
            let report = try finish(load)
            #expect(errorCount(report) == 0, "round \(round + 1), \(name): \(report)")
            #expect(value(report, "lifetime_closes") > 100, "\(report)")
            #expect(drained["resets"] == 0 && drained["bytes_in"] == drained["bytes_out"], "\(drained)")
            figures.append(
                "\(name): connections=\(Int(value(report, "lifetime_closes"))) \(failures(report))"
                    + " drained_accepted=\(drained["accepted"] ?? -1)")
            try cluster.restart(index)
            #expect(cluster.waitUntilUp(name, after: true), "\(name) did not come back UP")
        }
        figure("haproxy-drains-short", figures.joined(separator: "; "))
    }

    @Test("a drain under long-lived pipelined load: every reply checked, none lost, the connections replaced")
    func drainUnderLongLivedLoad() throws {
        let cluster = try Cluster()
        defer { cluster.stop() }
        #expect(cluster.waitUntilUp("s1") && cluster.waitUntilUp("s2"))
        let arguments = ["--connections", "10", "--pipeline", "4", "--warmup", "0", "--duration", "3", "--reconnect"]
        // First --reconnect alone: the race no server can win. A client that
        // never pauses has bytes in flight when the end of input leaves; the
        // server never read them (its bytes_in equals its bytes_out), and
        // they are owed replies on the client's side.
        var strict: [String: Any] = [:]
        var strictDrained: [String: Int] = [:]
        do {
            let load = try EchoLoadProcess(port: cluster.port, arguments)
            #expect(waitUntil(timeout: .seconds(60)) { cluster.sessionsCurrent("s1") >= 3 })
            strictDrained = try cluster.drain(0)
            strict = try finish(load)
            #expect(strictDrained["resets"] == 0 && strictDrained["bytes_in"] == strictDrained["bytes_out"])
            #expect(value(strict, "mismatches") == 0 && value(strict, "resets") == 0, "\(strict)")
            try cluster.restart(0)
            #expect(cluster.waitUntilUp("s1", after: true))
        }
        // Then with the unanswered messages sent again on the replacement.
        let load = try EchoLoadProcess(port: cluster.port, arguments + ["--resend-unanswered"])
        #expect(waitUntil(timeout: .seconds(60)) { cluster.sessionsCurrent("s1") >= 3 })
        let drained = try cluster.drain(0)
        let report = try finish(load)
        #expect(errorCount(report) == 0, "mismatches, resets, lost replies or failed connects: \(report)")
        #expect(value(report, "reconnects") > 0, "no connection was replaced: the drain did not happen under load")
        #expect(drained["resets"] == 0 && drained["bytes_in"] == drained["bytes_out"], "\(drained)")
        figure(
            "haproxy-drain-long-lived",
            "reconnect_only: owed_at_eof=\(Int(value(strict, "unexpected_eofs"))) of 10 connections;"
                + " with_resend: reconnects=\(Int(value(report, "reconnects"))) resent=\(Int(value(report, "resent")))"
                + " \(failures(report)) messages=\(Int(value(report, "messages")))")
    }

    @Test("out of rotation first (runtime API), then SIGTERM, with retries 0: 0 failed connections")
    func outOfRotationFirst() throws {
        let cluster = try Cluster(retries: 0)
        defer { cluster.stop() }
        #expect(cluster.waitUntilUp("s1") && cluster.waitUntilUp("s2"))
        let load = try EchoLoadProcess(
            port: cluster.port,
            ["--connections", "4", "--connection-lifetime", "1", "--warmup", "0", "--duration", "3"])
        let start = cluster.sessionsTotal("s1")
        #expect(waitUntil(timeout: .seconds(60)) { cluster.sessionsTotal("s1") >= start + 100 })
        let answer = try cluster.runtime("set server upper_echo/s1 state drain")
        #expect(answer.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "runtime API: \(answer)")
        #expect(waitUntil(timeout: .seconds(60)) { cluster.serverStat()["s1"]?["status"] == "DRAIN" })
        // Its sessions end by themselves; only then the SIGTERM.
        #expect(waitUntil(timeout: .seconds(60)) { cluster.sessionsCurrent("s1") == 0 })
        let drained = try cluster.drain(0)
        let report = try finish(load)
        #expect(errorCount(report) == 0, "\(report)")
        #expect(drained["resets"] == 0, "\(drained)")
        figure(
            "haproxy-out-of-rotation",
            "retries=0 connections=\(Int(value(report, "lifetime_closes"))) \(failures(report))")
    }
}

/// `scripts/cluster.sh`, the one command that runs instances behind HAProxy.
@Suite(
    "scripts/cluster.sh", .timeLimit(.minutes(2)),
    .enabled(if: Cluster.haproxyPath != nil, "haproxy is not installed (apt-get install haproxy; .ci/run installs it)"))
struct ClusterScriptTests {
    @Test("cluster.sh serves through HAProxy, and Ctrl-C drains and stops every process it started")
    func clusterScript() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let port = try Self.freePortRange(3)
        let script = Process()
        script.executableURL = URL(fileURLWithPath: "/bin/bash")
        script.arguments = [root.appendingPathComponent("scripts/cluster.sh").path, "2", "\(port)"]
        var environment = ProcessInfo.processInfo.environment
        environment["UPPER_ECHO"] = try ChildProcess.executablePath("upper-echo")
        environment["HAPROXY"] = Cluster.haproxyPath
        script.environment = environment
        let pipe = Pipe()
        script.standardInput = FileHandle.nullDevice
        script.standardOutput = pipe
        script.standardError = pipe
        let output = OutputCollector(reading: pipe.fileHandleForReading)
        try ChildProcess.runWithEmptySignalMask(script, name: "cluster.sh")
        defer {
            // The script stops what it started on SIGTERM too.
            if script.isRunning { _ = system_kill(script.processIdentifier, SIGTERM) }
            _ = waitUntil(timeout: .seconds(30)) { !script.isRunning }
        }
        #expect(
            waitUntil(timeout: .seconds(60)) { output.text.contains("Ctrl-C stops everything.") || !script.isRunning },
            "\(output.text)")
        #expect(output.text.contains("connect:      nc 127.0.0.1 \(port)"), "\(output.text)")
        // HAProxy may still be binding when the script prints: retry the first connect.
        var echoed = ""
        _ = waitUntil(timeout: .seconds(60)) {
            guard let client = try? TestClient(port: port, timeout: .seconds(10)) else { return false }
            defer { client.close() }
            echoed = (try? client.echo("through the cluster\n")) ?? ""
            return !echoed.isEmpty
        }
        #expect(echoed == "THROUGH THE CLUSTER\n")
        _ = system_kill(script.processIdentifier, SIGINT)
        #expect(
            waitUntil(timeout: .seconds(60)) { !script.isRunning }, "cluster.sh still runs after SIGINT: \(output.text)"
        )
        #expect(script.terminationReason == .exit && script.terminationStatus == 0, "\(output.text)")
        #expect(waitUntil { output.reachedEnd }, "a process the script started still holds its output")
        for name in ["s1", "s2"] {
            let line = output.lines.first { $0.hasPrefix("\(name): stopped ") }
            #expect(line?.contains(" resets=0 ") == true, "\(name): \(line ?? "no final counters"): \(output.text)")
        }
        #expect((try? TestClient(port: port, timeout: .seconds(5))) == nil, "HAProxy still listens")
    }
}

extension ClusterScriptTests {
    /// The first of `count` consecutive ports that are free now, below the
    /// kernel's ephemeral range (32768 and up), where no client's port can
    /// take one of them meanwhile.
    static func freePortRange(_ count: Int) throws -> UInt16 {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let base = UInt16.random(in: 20000...32000, using: &generator)
            let free = (0..<count).allSatisfy { offset in
                guard case .success(let fd) = system_socket(AF_INET, CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue))
                else { return false }
                defer { _ = system_close(fd) }
                _ = system_setsockopt(fd, .reuseAddress, 1)
                let address = SocketAddress(host: "127.0.0.1", port: base + UInt16(offset))!
                return (try? system_bind(fd, address).get()) != nil
            }
            if free { return base }
        }
        throw SpawnError(description: "no 3 consecutive free ports found")
    }
}

/// The kinds of error in an echo-load report: what makes its exit status 1.
private let errorKinds = ["mismatches", "resets", "unexpected_eofs", "failed_connects", "unanswered"]

/// The errors of an echo-load report.
private func errorCount(_ report: [String: Any]) -> Int {
    errorKinds.map { Int(value(report, $0)) }.reduce(0, +)
}

/// `failed=N`, and each kind of error there was, for a FIGURE line.
private func failures(_ report: [String: Any]) -> String {
    "failed=\(errorCount(report))"
        + errorKinds.filter { value(report, $0) > 0 }.map { " \($0)=\(Int(value(report, $0)))" }.joined()
}

private func value(_ report: [String: Any], _ key: String) -> Double {
    EchoLoadProcess.number(report, key) ?? -1
}

/// Runs echo-load through to its report.
private func runLoad(port: UInt16, _ arguments: [String]) throws -> [String: Any] {
    try finish(try EchoLoadProcess(port: port, arguments))
}

/// Waits for echo-load to end and returns its report.
private func finish(_ load: EchoLoadProcess) throws -> [String: Any] {
    guard load.child.waitForExit(timeout: .seconds(120)) else {
        load.child.kill()
        throw SpawnError(description: "echo-load did not end; stderr: \(load.child.errors.text.suffix(500))")
    }
    guard let report = load.report() else {
        throw SpawnError(description: "no JSON report; stderr: \(load.child.errors.text.suffix(500))")
    }
    return report
}

/// HAProxy from `deploy/haproxy.cfg` in front of two upper-echo instances,
/// all on 127.0.0.1: the deploy configuration with this cluster's ports,
/// runtime socket and servers, everything else as deployed.
final class Cluster {
    /// The haproxy executable, if one is installed.
    static let haproxyPath: String? = ["/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// The instances, `s1` and `s2`.
    private(set) var backends: [ServerProcess] = []
    /// Where HAProxy listens.
    let port: UInt16
    private let backendPorts: [UInt16]
    private let directory: URL
    private let haproxy = Process()
    private let haproxyOutput: OutputCollector
    private var socketPath: String { directory.appendingPathComponent("haproxy.sock").path }

    /// Starts both instances, then HAProxy; `retries` replaces the deploy
    /// configuration's `retries 3`.
    init(retries: Int? = nil) throws {
        guard let haproxyPath = Self.haproxyPath else { throw SpawnError(description: "haproxy is not installed") }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for _ in 0..<2 { backends.append(try ServerProcess.upperEcho(["--host", "127.0.0.1"])) }
        backendPorts = backends.map(\.port)
        port = try ClusterScriptTests.freePortRange(1)
        let deployed = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/haproxy.cfg")
        let configuration = try Self.rewrite(
            try String(contentsOf: deployed, encoding: .utf8), port: port, backends: backendPorts,
            socket: directory.appendingPathComponent("haproxy.sock").path, retries: retries)
        let configurationPath = directory.appendingPathComponent("haproxy.cfg")
        try configuration.write(to: configurationPath, atomically: true, encoding: .utf8)
        haproxy.executableURL = URL(fileURLWithPath: haproxyPath)
        haproxy.arguments = ["-W", "-db", "-f", configurationPath.path]
        let pipe = Pipe()
        haproxy.standardInput = FileHandle.nullDevice
        haproxy.standardOutput = pipe
        haproxy.standardError = pipe
        haproxyOutput = OutputCollector(reading: pipe.fileHandleForReading)
        try ChildProcess.runWithEmptySignalMask(haproxy, name: "haproxy")
        guard waitUntil(timeout: .seconds(60), { (try? runtime("show info")) != nil || !haproxy.isRunning }),
            haproxy.isRunning
        else {
            stop()
            throw SpawnError(description: "haproxy did not start: \(haproxyOutput.text.suffix(1000))")
        }
    }

    /// The deploy configuration with this cluster's address, socket, servers
    /// and retries; fails if a line it must replace is not there.
    static func rewrite(_ text: String, port: UInt16, backends: [UInt16], socket: String, retries: Int?) throws
        -> String
    {
        var lines: [String] = []
        var found: Set<String> = []
        var skipping = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if skipping {
                if line.contains("# END SERVERS") {
                    skipping = false
                    lines.append(line)
                }
                continue
            }
            if line == "    bind 127.0.0.1:8000" {
                lines.append("    bind 127.0.0.1:\(port)")
                found.insert("bind")
            } else if line.hasPrefix("    stats socket ") {
                lines.append("    stats socket \(socket) mode 600 level admin")
                found.insert("socket")
            } else if line.contains("# BEGIN SERVERS") {
                lines.append(line)
                for (index, backend) in backends.enumerated() {
                    lines.append("    server s\(index + 1) 127.0.0.1:\(backend)")
                }
                skipping = true
                found.insert("servers")
            } else if let retries, line == "    retries 3" {
                lines.append("    retries \(retries)")
                found.insert("retries")
            } else {
                lines.append(line)
            }
        }
        let needed: Set<String> =
            retries == nil ? ["bind", "socket", "servers"] : ["bind", "socket", "servers", "retries"]
        guard found == needed else {
            throw SpawnError(description: "deploy/haproxy.cfg lacks the lines for \(needed.subtracting(found))")
        }
        return lines.joined(separator: "\n")
    }

    /// A port nothing listens on now.
    static func freePort() throws -> UInt16 {
        let fd = try system_socket(AF_INET, CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)).get()
        defer { _ = system_close(fd) }
        try system_bind(fd, SocketAddress(host: "127.0.0.1", port: 0)!).get()
        return try system_getsockname(fd).get().port
    }

    /// Sends one command to HAProxy's runtime API and returns its answer.
    func runtime(_ command: String) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SpawnError(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw SpawnError(description: "socket path too long: \(socketPath)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
            raw[path.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { throw SpawnError(description: "connect \(socketPath): errno \(errno)") }
        try setClientTimeout(fd, .seconds(30))
        try sendAll(Array((command + "\n").utf8), to: fd)
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while case .success(let count) = chunk.withUnsafeMutableBytes({ system_recv(fd, $0) }), count > 0 {
            answer += chunk[..<count]
        }
        return String(decoding: answer, as: UTF8.self)
    }

    /// `show stat` for the backend's servers: by server name, each column by
    /// its name in the header.
    func serverStat() -> [String: [String: String]] {
        guard let text = try? runtime("show stat"), let header = text.split(separator: "\n").first,
            header.hasPrefix("# ")
        else { return [:] }
        let names = header.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var servers: [String: [String: String]] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.first == "upper_echo", fields.count >= 2, fields[1].hasPrefix("s") else { continue }
            servers[fields[1]] = Dictionary(zip(names, fields), uniquingKeysWith: { first, _ in first })
        }
        return servers
    }

    /// Sessions HAProxy has sent to server `name` so far.
    func sessionsTotal(_ name: String) -> Int { Int(serverStat()[name]?["stot"] ?? "") ?? 0 }

    /// Sessions open now on server `name`.
    func sessionsCurrent(_ name: String) -> Int { Int(serverStat()[name]?["scur"] ?? "") ?? 0 }

    /// Waits (bounded) until HAProxy has server `name` UP, its last check
    /// passed (L7OK). With `after`, its instance must also have been checked
    /// since it (re)started.
    func waitUntilUp(_ name: String, after restart: Bool = false) -> Bool {
        let index = Int(name.dropFirst())! - 1
        return waitUntil(timeout: .seconds(60)) {
            if restart && (backends[index].stats()?["accepted"] ?? 0) == 0 { return false }
            let server = serverStat()[name]
            return server?["status"] == "UP" && server?["check_status"] == "L7OK"
        }
    }

    /// SIGTERM to instance `index`; waits for it to exit 0 and returns the
    /// counters it logged as it stopped.
    func drain(_ index: Int) throws -> [String: Int] {
        let backend = backends[index]
        backend.send(SIGTERM)
        guard backend.waitForExit(timeout: .seconds(60)) else {
            throw SpawnError(description: "s\(index + 1) still running 60 s after SIGTERM")
        }
        guard backend.exited(with: 0), let stats = backend.finalStats() else {
            throw SpawnError(
                description: "s\(index + 1): \(backend.child.termination), \(backend.errors.text.suffix(500))")
        }
        return stats
    }

    /// Starts instance `index` again, on its port.
    func restart(_ index: Int) throws {
        let backend = try ServerProcess("upper-echo", ["--host", "127.0.0.1", "--port", "\(backendPorts[index])"])
        guard backend.waitForPort() == backendPorts[index] else {
            backend.child.kill()
            throw SpawnError(description: "s\(index + 1) did not listen again: \(backend.errors.text.suffix(500))")
        }
        backends[index] = backend
    }

    /// Stops HAProxy and the instances, and removes the files.
    func stop() {
        if haproxy.isRunning {
            _ = system_kill(haproxy.processIdentifier, SIGTERM)
            if !waitUntil(timeout: .seconds(10), { !haproxy.isRunning }) {
                _ = system_kill(haproxy.processIdentifier, SIGKILL)
            }
        }
        for backend in backends where backend.isRunning { _ = backend.stop() }
        try? FileManager.default.removeItem(at: directory)
    }
}
