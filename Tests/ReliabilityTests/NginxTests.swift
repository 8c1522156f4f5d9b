import CEpollShim
import Foundation
import Syscalls
import TestSupport
import Testing

/// upper-echo behind nginx's stream module, configured by
/// `deploy/nginx-stream.conf`: passive checks only, a refused connect goes
/// to the next server (`proxy_next_upstream`).
@Suite(
    "upper-echo behind nginx (stream)", .timeLimit(.minutes(2)),
    .enabled(
        if: NginxFront.isAvailable,
        "nginx or its stream module is not installed (apt-get install nginx libnginx-mod-stream)"))
struct NginxTests {
    @Test("a drain of one backend under short-connection load through nginx: 0 failed connections")
    func drainBehindNginx() throws {
        let backends = try (0..<2).map { _ in try ServerProcess.upperEcho(["--host", "127.0.0.1"]) }
        defer { for backend in backends where backend.isRunning { _ = backend.stop() } }
        let front = try NginxFront(backends: backends.map(\.port))
        defer { front.stop() }
        let client = try TestClient(port: front.port)
        #expect(try client.echo("through nginx\n") == "THROUGH NGINX\n")
        client.close()
        let load = try EchoLoadProcess(
            port: front.port, ["--connections", "4", "--connection-lifetime", "1", "--warmup", "0", "--duration", "3"])
        #expect(waitUntil(timeout: .seconds(60)) { (backends[0].stats()?["accepted"] ?? 0) >= 100 })
        backends[0].send(SIGTERM)
        #expect(backends[0].waitForExit(timeout: .seconds(60)) && backends[0].exited(with: 0))
        let drained = try #require(backends[0].finalStats())
        guard load.child.waitForExit(timeout: .seconds(120)), let report = load.report() else {
            load.child.kill()
            Issue.record("echo-load gave no report: \(load.child.errors.text.suffix(500))")
            return
        }
        let errors = ["mismatches", "resets", "unexpected_eofs", "failed_connects", "unanswered"]
            .map { EchoLoadProcess.number(report, $0) ?? -1 }.reduce(0, +)
        #expect(errors == 0, "\(report)")
        #expect(drained["resets"] == 0 && drained["bytes_in"] == drained["bytes_out"], "\(drained)")
        let connections = Int(EchoLoadProcess.number(report, "lifetime_closes") ?? -1)
        figure("nginx-drain-short", "connections=\(connections) failed=\(Int(errors))")
    }
}

/// nginx running `deploy/nginx-stream.conf`, rewritten for this test's ports,
/// with its pid file and logs in a directory of its own.
final class NginxFront {
    static let executable = ["/usr/sbin/nginx", "/usr/bin/nginx"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    static let module = "/usr/lib/nginx/modules/ngx_stream_module.so"
    static var isAvailable: Bool { executable != nil && FileManager.default.fileExists(atPath: module) }

    let port: UInt16
    private let directory: URL
    private let process = Process()
    private let output: OutputCollector

    init(backends: [UInt16]) throws {
        guard let executable = Self.executable else { throw SpawnError(description: "nginx is not installed") }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nginx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let fd = try system_socket(AF_INET, CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)).get()
        try system_bind(fd, SocketAddress(host: "127.0.0.1", port: 0)!).get()
        port = try system_getsockname(fd).get().port
        _ = system_close(fd)
        let deployed = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/nginx-stream.conf")
        var lines: [String] = []
        var servers = 0
        for line in try String(contentsOf: deployed, encoding: .utf8).split(
            separator: "\n", omittingEmptySubsequences: false)
        {
            if line.hasPrefix("pid ") {
                lines.append("pid \(directory.path)/nginx.pid;")
            } else if line.trimmingCharacters(in: .whitespaces) == "listen 127.0.0.1:8000;" {
                lines.append("        listen 127.0.0.1:\(port);")
            } else if line.trimmingCharacters(in: .whitespaces).hasPrefix("server 127.0.0.1:800"), servers < 2 {
                lines.append(
                    line.replacingOccurrences(of: "127.0.0.1:800\(servers + 1)", with: "127.0.0.1:\(backends[servers])")
                )
                servers += 1
            } else {
                lines.append(String(line))
            }
        }
        guard servers == 2 else { throw SpawnError(description: "deploy/nginx-stream.conf: server lines not found") }
        let configuration = directory.appendingPathComponent("nginx.conf")
        try lines.joined(separator: "\n").write(to: configuration, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-c", configuration.path, "-p", directory.path, "-g", "daemon off;"]
        let pipe = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = pipe
        process.standardError = pipe
        output = OutputCollector(reading: pipe.fileHandleForReading)
        try ChildProcess.runWithEmptySignalMask(process, name: "nginx")
        // Listening once a connection to it succeeds.
        let port = self.port
        guard
            waitUntil(
                timeout: .seconds(60),
                {
                    !process.isRunning || (try? TestClient(port: port, timeout: .seconds(5)))?.close() != nil
                }), process.isRunning
        else {
            stop()
            throw SpawnError(description: "nginx did not start: \(output.text.suffix(1000))")
        }
    }

    /// QUIT (nginx's graceful stop), then KILL if it lingers; removes the files.
    func stop() {
        if process.isRunning {
            _ = system_kill(process.processIdentifier, SIGQUIT)
            if !waitUntil(timeout: .seconds(10), { !process.isRunning }) {
                _ = system_kill(process.processIdentifier, SIGKILL)
            }
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
