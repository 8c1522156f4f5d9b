import Histogram

/// What went wrong during a run. Any of the first five makes the exit code 1;
/// retries are not errors, only a sign that the server was slow to accept.
struct ErrorCounts {
    /// Replies with a byte that is not the upper-cased byte sent (or bytes
    /// that were never sent); each closes its connection.
    var mismatches = 0
    /// Connections reset by the server (ECONNRESET, EPIPE) or failed with
    /// another error while established.
    var resets = 0
    /// Connections the server closed while replies were still expected.
    var unexpectedEOFs = 0
    /// Connections that never got established, after every retry.
    var failedConnects = 0
    /// Connections still open at the end that were sent messages and never
    /// got a single reply (a server that accepts and stays silent).
    var unanswered = 0
    /// Connect attempts that timed out or were refused and were tried again.
    var connectRetries = 0
    /// Connections the server ended cleanly (or, with --resend-unanswered,
    /// with replies owed) that were replaced by new ones (--reconnect).
    var reconnects = 0
    /// Messages sent again on a replacement because the server ended their
    /// connection before answering them (--resend-unanswered).
    var resent = 0
    /// Connections closed here after their --connection-lifetime replies.
    var lifetimeCloses = 0

    /// The errors that count against the server.
    var total: Int { mismatches + resets + unexpectedEOFs + failedConnects + unanswered }
}

/// The latency histograms and counters of one run. Latencies are recorded in
/// nanoseconds (3 significant digits) and reported in microseconds.
///
/// A reply counts when it completes inside the measured window
/// `[windowStart, windowEnd)`: replies completed during warm-up or the final
/// drain are verified all the same, but neither counted nor timed.
struct Measurement {
    /// Latencies above this (a minute) are recorded as this.
    static let highestLatency: UInt64 = 60_000_000_000

    /// Every reply completed inside the window.
    private(set) var histogram = Measurement.makeHistogram()
    /// Every reply completed since the last progress line, warm-up included.
    private var interval = Measurement.makeHistogram()
    private var intervalMessages = 0
    private var intervalStart: Int64 = 0

    /// Start of the measured window (monotonic ns); never, until set.
    var windowStart = Int64.max
    /// End of the measured window (monotonic ns).
    var windowEnd = Int64.max
    /// Replies completed inside the window.
    private(set) var messages = 0
    /// The errors so far.
    var errors = ErrorCounts()

    private static func makeHistogram() -> Histogram<UInt64> {
        Histogram(highestTrackableValue: highestLatency, numberOfSignificantValueDigits: .three)
    }

    /// Records one completed reply; returns whether it fell inside the window.
    @inline(__always)
    mutating func complete(latency: Int64, at now: Int64) -> Bool {
        let value = Swift.min(UInt64(Swift.max(latency, 1)), Self.highestLatency)
        interval.record(value)
        intervalMessages += 1
        guard now >= windowStart && now < windowEnd else { return false }
        histogram.record(value)
        messages += 1
        return true
    }

    /// Starts the first progress interval at `now`.
    mutating func startInterval(at now: Int64) {
        interval.reset()
        intervalMessages = 0
        intervalStart = now
    }

    /// The progress line for the interval ending `now`, such as
    /// `[3s] 123456 msgs/s, p99 45 us, errors 0`; starts the next interval.
    mutating func progressLine(at now: Int64, since start: Int64) -> String {
        let seconds = Double(now - intervalStart) / 1e9
        let rate = seconds > 0 ? Int((Double(intervalMessages) / seconds).rounded()) : 0
        let p99 = intervalMessages > 0 ? Report.microseconds(interval.valueAtPercentile(99)) : "-"
        let elapsed = Int((Double(now - start) / 1e9).rounded())
        startInterval(at: now)
        return "[\(elapsed)s] \(rate) msgs/s, p99 \(p99) us, errors \(errors.total)\n"
    }
}
