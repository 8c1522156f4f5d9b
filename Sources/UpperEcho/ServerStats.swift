/// Counters of an `UpperEchoServer`, for tests, `SIGHUP` reports and benchmarks.
public struct ServerStats: Sendable, Equatable, CustomStringConvertible {
    /// Connections open now.
    public var open = 0
    /// Connections accepted since the start.
    public var accepted = 0
    /// Connections closed since the start.
    public var closed = 0
    /// Connections closed at once on arrival: `maxConnections` was reached,
    /// or the selector could not watch them (select's descriptor 1024).
    public var refused = 0
    /// Connections closed by the idle timeout.
    public var idleClosed = 0
    /// Connections closed by a reset or another error.
    public var resets = 0
    /// Bytes received.
    public var bytesIn = 0
    /// Bytes sent or queued.
    public var bytesOut = 0
    /// The most bytes ever queued for one connection.
    public var peakQueued = 0
    /// Times accepting paused for want of descriptors.
    public var acceptPauses = 0

    /// Creates zeroed counters.
    public init() {}

    /// One line of `key=value` pairs, starting with `stats`.
    public var description: String {
        "stats open=\(open) accepted=\(accepted) closed=\(closed) refused=\(refused) idle_closed=\(idleClosed)"
            + " resets=\(resets) bytes_in=\(bytesIn) bytes_out=\(bytesOut) peak_queued=\(peakQueued)"
            + " accept_pauses=\(acceptPauses)"
    }
}
