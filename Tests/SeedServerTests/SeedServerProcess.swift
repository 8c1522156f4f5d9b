@_exported import TestSupport
import Foundation
import Syscalls

/// The `seed-server` executable running as a child process, its output
/// collected. `stop()` must be called (with `defer`) once the test is done.
final class SeedServerProcess {
    private let child: ChildProcess
    var process: Process { child.process }
    var output: OutputCollector { child.output }
    var errors: OutputCollector { child.errors }

    /// Starts `seed-server arguments...`.
    init(arguments: [String] = ["0"]) throws {
        child = try ChildProcess("seed-server", arguments)
    }

    /// Waits (at most `timeout`) for the `listening on 127.0.0.1:PORT` line
    /// and returns PORT, or `nil` if it never came.
    func waitForPort(timeout: Duration = .seconds(60)) -> UInt16? {
        var port: UInt16?
        _ = waitUntil(timeout: timeout) {
            port = Self.port(in: output.text)
            return port != nil || !process.isRunning
        }
        return port
    }

    static func port(in text: String) -> UInt16? {
        let prefix = "listening on 127.0.0.1:"
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }),
            text.contains(line + "\n")
        else { return nil }
        return UInt16(line.dropFirst(prefix.count))
    }

    /// How many lines of the output are exactly `line`.
    func count(_ line: String) -> Int {
        output.text.split(separator: "\n", omittingEmptySubsequences: false).filter { $0 == line }.count
    }

    /// Waits (at most `timeout`) for the process to exit by itself.
    func waitForExit(timeout: Duration = .seconds(60)) -> Bool {
        waitUntil(timeout: timeout) { !process.isRunning }
    }

    /// Sends SIGTERM and waits (bounded) for the process to end; returns
    /// whether it did.
    @discardableResult
    func stop() -> Bool {
        if process.isRunning { process.terminate() }
        return waitForExit()
    }
}
