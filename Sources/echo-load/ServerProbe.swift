import Syscalls

/// The server's CPU time and memory over the measured window, read from
/// `/proc/PID/stat` and `/proc/PID/status` (`--server-pid`). With it the
/// report gives messages per server CPU-second: the fair figure on
/// loopback, where the load generator is often the bottleneck.
struct ServerProbe {
    let pid: Int32
    private var startTicks: Int?
    private var startTime: Int64 = 0
    private(set) var cpuSeconds: Double?
    private(set) var wallSeconds: Double?
    private(set) var rssKilobytes: Int?
    private(set) var peakRSSKilobytes: Int?

    init(pid: Int32) {
        self.pid = pid
    }

    /// Takes the first sample; later calls do nothing.
    mutating func windowStarted(at now: Int64) {
        guard startTicks == nil else { return }
        startTicks = cpuTicks()
        startTime = now
    }

    /// Takes the last sample; later calls do nothing.
    mutating func windowEnded(at now: Int64) {
        guard let startTicks, cpuSeconds == nil, let endTicks = cpuTicks() else { return }
        cpuSeconds = Double(endTicks - startTicks) / Double(system_sysconf_clock_ticks())
        wallSeconds = Double(now - startTime) / 1e9
        rssKilobytes = statusField("VmRSS:")
        peakRSSKilobytes = statusField("VmHWM:")
    }

    /// utime + stime: fields 14 and 15 of `/proc/PID/stat`, counted after the
    /// command name in parentheses (which may itself hold spaces).
    private func cpuTicks() -> Int? {
        guard let stat = system_read_file("/proc/\(pid)/stat"),
            let close = stat.lastIndex(of: UInt8(ascii: ")"))
        else { return nil }
        let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " "))
        // fields[0] is the state (field 3), so field N is fields[N - 3].
        guard fields.count > 12, let user = Int(String(decoding: fields[11], as: UTF8.self)),
            let system = Int(String(decoding: fields[12], as: UTF8.self))
        else { return nil }
        return user + system
    }

    /// A `kB` field of `/proc/PID/status`, such as `VmRSS:`.
    private func statusField(_ name: String) -> Int? {
        guard let status = system_read_file("/proc/\(pid)/status") else { return nil }
        for line in String(decoding: status, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name) {
            return Int(line.dropFirst(name.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }
}
