@_exported import TestSupport
import Foundation
import Syscalls

/// `upper-echo --port 0 ...` in a child process, with what the scenarios
/// read about it: its port, its `stats` counters (SIGHUP), and from `/proc`
/// its open descriptors, resident memory and CPU time.
final class ServerProcess {
    let child: ChildProcess
    let port: UInt16

    /// Starts the server and waits (bounded) for its `listening on` line.
    init(_ arguments: [String] = [], descriptorLimit: Int? = nil) throws {
        let child = try ChildProcess("upper-echo", ["--port", "0"] + arguments, descriptorLimit: descriptorLimit)
        self.child = child
        var port: UInt16?
        _ = waitUntil(timeout: .seconds(60)) {
            port = Self.listeningPort(child.output.lines)
            return port != nil || !child.isRunning
        }
        guard let port else {
            child.kill()
            throw SpawnError(description: "upper-echo printed no listening line; stderr: \(child.errors.text)")
        }
        self.port = port
    }

    /// The port of a `listening on HOST:PORT (BACKEND)` line.
    private static func listeningPort(_ lines: [Substring]) -> UInt16? {
        guard let line = lines.first(where: { $0.hasPrefix("listening on ") }),
            let colon = line.lastIndex(of: ":"), let space = line.lastIndex(of: " "), colon < space
        else { return nil }
        return UInt16(line[line.index(after: colon)..<space])
    }

    var pid: pid_t { child.pid }
    var isRunning: Bool { child.isRunning }

    /// Asks for a `stats` line with SIGHUP and returns its counters by name,
    /// or `nil` if no new line came within 30 s.
    func stats() -> [String: Int]? { child.stats() }

    /// The counters of the `stopped` line the server logs on standard error
    /// as it exits, once the process has ended.
    func finalStats() -> [String: Int]? {
        guard waitUntil({ child.errors.reachedEnd }),
            let line = child.errors.lines.last(where: { $0.contains(" stopped open=") })
        else { return nil }
        return statsCounters(in: line)
    }

    /// The descriptors the server holds: the entries of `/proc/PID/fd`.
    func openDescriptors() -> [CInt] { child.openDescriptors() }

    /// How many descriptors the server holds.
    func openDescriptorCount() -> Int { openDescriptors().count }

    /// Polls (bounded) until the server holds `count` descriptors; returns
    /// the last count seen.
    func waitForDescriptorCount(_ count: Int, timeout: Duration = .seconds(30)) -> Int {
        var seen = openDescriptorCount()
        _ = waitUntil(timeout: timeout) {
            seen = openDescriptorCount()
            return seen == count
        }
        return seen
    }

    /// Resident memory now (`VmRSS`), in KiB.
    func residentKilobytes() -> Int? { statusField("VmRSS:") }

    /// The peak resident memory so far (`VmHWM`), in KiB.
    func peakResidentKilobytes() -> Int? { statusField("VmHWM:") }

    private func statusField(_ name: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            return Int(line.dropFirst(name.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }

    /// The CPU the server uses during `window`, as a fraction of one core.
    func cpuLoad(over window: Duration = .seconds(1)) -> Double? { child.cpuLoad(over: window) }

    /// SIGTERM, SIGKILL after 5 s; returns whether SIGTERM was enough.
    @discardableResult
    func stop() -> Bool { child.stop() }
}
