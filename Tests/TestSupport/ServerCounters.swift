import Foundation

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
    /// its counters by name, or `nil` if no new line came within 5 s.
    public func stats() -> [String: Int]? {
        let before = output.lines.count { $0.hasPrefix("stats ") }
        send(SIGHUP)
        guard waitUntil({ output.lines.count { $0.hasPrefix("stats ") } > before }) else { return nil }
        return output.lines.last { $0.hasPrefix("stats ") }.map(statsCounters(in:))
    }

    /// The descriptors the child holds, sorted: the entries of `/proc/PID/fd`.
    public func openDescriptors() -> [CInt] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return names.compactMap { CInt($0) }.sorted()
    }
}
