@_exported import TestSupport
import Foundation
import Syscalls

/// The `upper-echo` executable running as a child process, its output
/// collected. Create it through `withUpperEcho`, or call `stop()` in a `defer`.
final class UpperEchoProcess {
    private let child: ChildProcess
    var process: Process { child.process }
    var output: OutputCollector { child.output }
    var errors: OutputCollector { child.errors }

    /// Starts `upper-echo arguments...`; with `descriptorLimit`, through
    /// `bash -c 'ulimit -n LIMIT; exec upper-echo ...'` (same pid: `exec`).
    init(_ arguments: [String], descriptorLimit: Int? = nil) throws {
        child = try ChildProcess("upper-echo", arguments, descriptorLimit: descriptorLimit)
    }

    var pid: pid_t { process.processIdentifier }

    /// The `listening on HOST:PORT (BACKEND)` line, once it is complete.
    var listeningLine: (host: String, port: UInt16, backend: String)? {
        guard let line = output.lines.first(where: { $0.hasPrefix("listening on ") }),
            let colon = line.lastIndex(of: ":"), let space = line.lastIndex(of: " "), colon < space,
            line.hasSuffix(")"), let port = UInt16(line[line.index(after: colon)..<space])
        else { return nil }
        let host = line.dropFirst("listening on ".count)[..<colon]
        return (String(host), port, String(line[line.index(space, offsetBy: 2)...].dropLast()))
    }

    /// Waits (bounded) for the listening line and returns its port.
    func waitForPort(timeout: Duration = .seconds(60)) -> UInt16? {
        _ = waitUntil(timeout: timeout) { listeningLine != nil || !process.isRunning }
        return listeningLine?.port
    }

    /// Sends `signal` to the server.
    func send(_ signal: CInt) {
        if process.isRunning { _ = kill(pid, signal) }
    }

    /// Asks for a `stats` line with SIGHUP and returns its counters by name,
    /// or `nil` if no new line came within 30 s.
    func stats() -> [String: Int]? { child.stats() }

    /// The descriptors the server holds, from `/proc/PID/fd`.
    func openDescriptors() -> [CInt] { child.openDescriptors() }

    /// The CPU time the server has used so far.
    func cpuTime() -> Duration? { child.cpuTime() }

    /// The CPU time the server uses during `window`, as a fraction of one CPU.
    func cpuLoad(over window: Duration = .seconds(1)) -> Double? { child.cpuLoad(over: window) }

    /// Waits (bounded) for the process to exit by itself.
    func waitForExit(timeout: Duration = .seconds(60)) -> Bool {
        waitUntil(timeout: timeout) { !process.isRunning }
    }

    /// Whether the process exited normally with `status`.
    func exited(with status: CInt) -> Bool {
        !process.isRunning && process.terminationReason == .exit && process.terminationStatus == status
    }

    /// SIGTERM, then SIGKILL if the server is still running after 5 s; returns
    /// whether SIGTERM alone was enough.
    @discardableResult
    func stop() -> Bool {
        send(SIGTERM)
        if waitForExit(timeout: .seconds(5)) { return true }
        send(SIGKILL)
        _ = waitForExit()
        return false
    }
}

/// Starts `upper-echo --port 0 arguments...`, waits for its port, runs `body`,
/// checks that the server survived it, and always stops the server.
func withUpperEcho(
    _ arguments: [String] = [],
    descriptorLimit: Int? = nil,
    _ body: (UpperEchoProcess, UInt16) throws -> Void
) throws {
    let server = try UpperEchoProcess(["--port", "0"] + arguments, descriptorLimit: descriptorLimit)
    defer { server.stop() }
    guard let port = server.waitForPort() else {
        throw SpawnError(description: "no listening line; stderr: \(server.errors.text)")
    }
    try body(server, port)
    if !server.process.isRunning {
        throw SpawnError(description: "upper-echo died during the test; stderr: \(server.errors.text)")
    }
}
