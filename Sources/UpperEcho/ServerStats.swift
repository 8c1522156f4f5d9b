import Reactor

/// Counters of an `UpperEchoServer`, for tests, `SIGHUP` reports and benchmarks.
public struct ServerStats: Sendable, Equatable, CustomStringConvertible {
    /// Connections accepted since the start, refused ones included.
    public var accepted = 0
    /// Connections closed since the start (refused ones are not counted here).
    public var closed = 0
    /// Connections closed at once on arrival: `maxConnections` were open,
    /// or the selector could not watch them (select's descriptor 1024).
    public var refused = 0
    /// Connections closed by the idle timeout.
    public var idleClosed = 0
    /// Connections the peer reset, or that failed otherwise, while replies
    /// were owed: some byte received was not answered, or replies were
    /// still queued.
    public var resets = 0
    /// Connections the peer reset with nothing owed: every byte received
    /// was answered and nothing was queued. What a balancer's health check
    /// does: HAProxy's `tcp-check` connects, sends `ping\n`, reads `PING`,
    /// then closes with a reset; a plain TCP check connects and resets.
    public var probeResets = 0
    /// Bytes received.
    public var bytesIn = 0
    /// Bytes the kernel took for the clients. Replies still queued, or
    /// dropped when a connection was reset or cut at the shutdown grace, do
    /// not count.
    public var bytesOut = 0
    /// The most bytes ever queued for one connection.
    public var peakQueued = 0
    /// Times accepting paused for want of descriptors.
    public var acceptPauses = 0

    /// Connections open now: accepted, neither refused nor closed.
    public var open: Int { accepted - refused - closed }

    /// Creates zeroed counters.
    public init() {}

    /// The counters as `key=value` pairs: `open=1 accepted=3 ...`.
    public var pairs: String {
        "open=\(open) accepted=\(accepted) closed=\(closed) refused=\(refused) idle_closed=\(idleClosed)"
            + " resets=\(resets) probe_resets=\(probeResets) bytes_in=\(bytesIn) bytes_out=\(bytesOut)"
            + " peak_queued=\(peakQueued) accept_pauses=\(acceptPauses)"
    }

    /// One line: `stats ` and the `key=value` pairs.
    public var description: String { "stats " + pairs }
}

extension ServerStats {
    /// Counts one connection closed for `reason`, after it moved
    /// `received` bytes in and `sent` out: a reset with nothing owed (every
    /// byte received answered) is a probe's, any other a client's.
    mutating func countClose(_ reason: TCPConnection.CloseReason, received: Int, sent: Int) {
        closed += 1
        switch reason {
        case .idleTimeout: idleClosed += 1
        // Nothing owed (every byte received answered, nothing queued): what
        // a health check does, connecting, maybe probing, then resetting.
        case .reset where sent == received: probeResets += 1
        case .reset: resets += 1
        case .endOfInput, .closedLocally: break
        }
    }

    /// The counters of several servers (the loops of a group) added up;
    /// `peakQueued` is the largest of theirs.
    public static func total(_ all: [ServerStats]) -> ServerStats {
        var sum = ServerStats()
        for stats in all {
            sum.accepted += stats.accepted
            sum.closed += stats.closed
            sum.refused += stats.refused
            sum.idleClosed += stats.idleClosed
            sum.resets += stats.resets
            sum.probeResets += stats.probeResets
            sum.bytesIn += stats.bytesIn
            sum.bytesOut += stats.bytesOut
            sum.peakQueued = max(sum.peakQueued, stats.peakQueued)
            sum.acceptPauses += stats.acceptPauses
        }
        return sum
    }
}
