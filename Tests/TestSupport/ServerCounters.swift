import Foundation
import Syscalls

/// The `key=value` pairs of a line of counters, as upper-echo prints them
/// (`stats open=3 accepted=10 ...`); other words are skipped.
public func statsCounters(in line: Substring) -> [String: Int] {
    var counters: [String: Int] = [:]
    for pair in line.split(separator: " ") {
        let parts = pair.split(separator: "=")
        if parts.count == 2, let value = Int(parts[1]) { counters[String(parts[0])] = value }
    }
    return counters
}

extension ChildProcess {
    /// Asks a running upper-echo for a `stats` line with SIGHUP and returns
    /// its counters by name, or `nil` if no new line came within 30 s.
    public func stats() -> [String: Int]? {
        let before = output.lines.count { $0.hasPrefix("stats ") }
        send(SIGHUP)
        guard waitUntil({ output.lines.count { $0.hasPrefix("stats ") } > before }) else { return nil }
        return output.lines.last { $0.hasPrefix("stats ") }.map(statsCounters(in:))
    }

    /// The CPU time (user + system) the child has used so far, from
    /// `/proc/PID/stat` (fields 14 and 15, in clock ticks).
    public func cpuTime() -> Duration? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let nameEnd = text.lastIndex(of: ")")
        else { return nil }
        // After the parenthesised name, field 3 (the state) comes first.
        let fields = text[text.index(after: nameEnd)...].split(separator: " ")
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return .milliseconds((user + system) * 1000 / system_sysconf_clock_ticks())
    }

    /// The CPU time the child uses during `window`, as a fraction of one core.
    public func cpuLoad(over window: Duration = .seconds(1)) -> Double? {
        let start = ContinuousClock.now
        guard let before = cpuTime() else { return nil }
        Thread.sleep(forTimeInterval: Double(window.components.seconds) + Double(window.components.attoseconds) / 1e18)
        guard let after = cpuTime() else { return nil }
        return (after - before) / (ContinuousClock.now - start)
    }

    /// The descriptors the child holds, sorted: the entries of `/proc/PID/fd`.
    public func openDescriptors() -> [CInt] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return names.compactMap { CInt($0) }.sorted()
    }
}
