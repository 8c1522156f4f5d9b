import Histogram

/// What one run measured.
struct LoadResult {
    let plan: LoadPlan
    /// The server's CPU and memory over the window, with `--server-pid`.
    let server: ServerProbe?
    /// Replies completed inside the measured window.
    let messages: Int
    /// The length of the measured window, in seconds (shorter than planned
    /// only when every connection failed before its end).
    let seconds: Double
    /// Latencies of the counted replies, in nanoseconds.
    let histogram: Histogram<UInt64>
    /// The fewest counted replies of any established connection.
    let leastPerConnection: UInt64
    /// The most counted replies of any established connection.
    let mostPerConnection: UInt64
    let established: Int
    let errors: ErrorCounts

    var messagesPerSecond: Double { seconds > 0 ? Double(messages) / seconds : 0 }

    /// Payload bytes echoed per second, in MB (10^6 bytes): each message's
    /// bytes counted once, though they cross the loopback twice (out and back).
    var megabytesPerSecond: Double { messagesPerSecond * Double(plan.size) / 1e6 }

    /// Replies per second of server CPU time: the server's efficiency,
    /// whichever side was the bottleneck.
    var messagesPerServerCPUSecond: Double? {
        guard let cpu = server?.cpuSeconds, cpu > 0 else { return nil }
        return Double(messages) / cpu
    }

    /// The server's CPU use over the window, in percent of one core.
    var serverCPUPercent: Double? {
        guard let cpu = server?.cpuSeconds, let wall = server?.wallSeconds, wall > 0 else { return nil }
        return cpu / wall * 100
    }
}

/// The final report: a few lines of text, or one JSON object.
enum Report {
    /// The human-readable report.
    static func text(_ result: LoadResult) -> String {
        let plan = result.plan
        let mode = plan.rate.map { "open loop at \(fixed($0, 0)) msgs/s" } ?? "closed loop"
        let errors = result.errors
        let latency =
            result.messages == 0
            ? "no replies counted"
            : ["p50", "p90", "p99", "p99.9"].enumerated().map { index, name in
                "\(name) \(percentile(result, [50, 90, 99, 99.9][index]))"
            }.joined(separator: "  ") + "  max \(microseconds(result.histogram.max))"
        return """
            echo-load: \(plan.connections) connection\(plan.connections == 1 ? "" : "s") to \(plan.target), \(plan.size)-byte messages, \
            pipeline \(plan.pipeline), \(mode); \(fixed(plan.warmupSeconds, 1)) s warm-up, \
            \(fixed(result.seconds, 2)) s measured
              messages        \(result.messages) = \(fixed(result.messagesPerSecond, 1)) msgs/s
              payload         \(fixed(result.megabytesPerSecond, 2)) MB/s echoed (message bytes per second, \
            each counted once though it crosses the loopback twice; 1 MB = 10^6 bytes)
              latency (us)    \(latency)
              per connection  least \(result.leastPerConnection), most \(result.mostPerConnection) replies \
            (\(result.established) of \(plan.connections) connections established)
              errors          \(errors.total) (mismatches \(errors.mismatches), resets \(errors.resets), \
            unexpected EOFs \(errors.unexpectedEOFs), failed connects \(errors.failedConnects), \
            never answered \(errors.unanswered)); \
            connect retries \(errors.connectRetries)\(replacementLine(result))\(serverLine(result))
            """
    }

    /// The report as one JSON object on one line.
    static func json(_ result: LoadResult) -> String {
        let plan = result.plan
        let errors = result.errors
        let counted = result.messages > 0
        func latency(_ percentile: Double) -> String {
            counted ? microseconds(result.histogram.valueAtPercentile(percentile)) : "null"
        }
        let fields: [(String, String)] = [
            ("host", quoted(plan.target.host)),
            ("port", "\(plan.target.port)"),
            ("connections", "\(plan.connections)"),
            ("size", "\(plan.size)"),
            ("pipeline", "\(plan.pipeline)"),
            ("rate", plan.rate.map { fixed($0, 3) } ?? "null"),
            ("duration_s", fixed(result.seconds, 3)),
            ("messages", "\(result.messages)"),
            ("msgs_per_s", fixed(result.messagesPerSecond, 1)),
            ("mb_per_s", fixed(result.megabytesPerSecond, 3)),
            ("p50_us", latency(50)),
            ("p90_us", latency(90)),
            ("p99_us", latency(99)),
            ("p999_us", latency(99.9)),
            ("max_us", counted ? microseconds(result.histogram.max) : "null"),
            ("min_conn_msgs", "\(result.leastPerConnection)"),
            ("max_conn_msgs", "\(result.mostPerConnection)"),
            ("mismatches", "\(errors.mismatches)"),
            ("resets", "\(errors.resets)"),
            ("unexpected_eofs", "\(errors.unexpectedEOFs)"),
            ("failed_connects", "\(errors.failedConnects)"),
            ("unanswered", "\(errors.unanswered)"),
            ("connect_retries", "\(errors.connectRetries)"),
            ("reconnects", "\(errors.reconnects)"),
            ("resent", "\(errors.resent)"),
            ("lifetime_closes", "\(errors.lifetimeCloses)"),
            ("warmup_s", fixed(plan.warmupSeconds, 3)),
            ("seed", "\(plan.seed)"),
            ("server_cpu_s", result.server?.cpuSeconds.map { fixed($0, 3) } ?? "null"),
            ("server_cpu_percent", result.serverCPUPercent.map { fixed($0, 1) } ?? "null"),
            ("msgs_per_server_cpu_s", result.messagesPerServerCPUSecond.map { fixed($0, 1) } ?? "null"),
            ("server_rss_kb", result.server?.rssKilobytes.map { "\($0)" } ?? "null"),
            ("server_peak_rss_kb", result.server?.peakRSSKilobytes.map { "\($0)" } ?? "null"),
        ]
        return "{" + fields.map { "\(quoted($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }

    private static func replacementLine(_ result: LoadResult) -> String {
        let plan = result.plan
        guard plan.replacesConnections else { return "" }
        let errors = result.errors
        return
            "\n  replaced        \(errors.reconnects) ended by the server (reconnects), \(errors.resent) messages resent, "
            + "\(errors.lifetimeCloses) closed at their lifetime of \(plan.connectionLifetime.map { "\($0)" } ?? "-")"
    }

    private static func serverLine(_ result: LoadResult) -> String {
        guard let server = result.server, let cpu = server.cpuSeconds else { return "" }
        let percent = result.serverCPUPercent.map { fixed($0, 1) } ?? "?"
        let perCPU = result.messagesPerServerCPUSecond.map { fixed($0, 0) } ?? "?"
        let rss = server.rssKilobytes.map { "\($0) kB" } ?? "?"
        return
            "\n  server          pid \(server.pid): \(fixed(cpu, 2)) s CPU (\(percent) %), \(perCPU) msgs per CPU-second, RSS \(rss)"
    }

    private static func percentile(_ result: LoadResult, _ percentile: Double) -> String {
        microseconds(result.histogram.valueAtPercentile(percentile))
    }

    /// Nanoseconds as microseconds with one decimal: `45123` is `45.1`.
    static func microseconds(_ nanoseconds: UInt64) -> String {
        fixed(Double(nanoseconds) / 1000, 1)
    }

    /// `value` rounded to `digits` decimals, without Foundation.
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int((abs(value) * scale).rounded())
        let sign = value < 0 && scaled != 0 ? "-" : ""
        guard digits > 0 else { return sign + "\(scaled)" }
        let whole = scaled / Int(scale)
        var fraction = String(scaled % Int(scale))
        fraction = String(repeating: "0", count: digits - fraction.count) + fraction
        return sign + "\(whole).\(fraction)"
    }

    private static func quoted(_ text: String) -> String {
        var escaped = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case _ where scalar.value < 0x20: escaped += "\\u" + String(repeating: "0", count: 2) + hex(scalar.value)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 2 - digits.count) + digits
    }
}
