import Reactor

/// How an `UpperEchoServer` listens, serves and shuts down.
public struct Configuration: Sendable {
    /// The numeric address to listen on.
    public var host = "127.0.0.1"
    /// The port; 0 picks a free one.
    public var port: UInt16 = 8000
    /// The kernel's accept queue.
    public var backlog: CInt = 511
    /// Connections beyond this many open at once are closed as soon as they
    /// are accepted (`TCPListener.Options.maxConnections`); `nil`: no limit
    /// but the descriptor limit.
    public var maxConnections: Int?
    /// Per-connection settings: water marks, idle timeout.
    public var connection = TCPConnection.Options()
    /// How long a graceful shutdown waits, from its start, for every connection
    /// to take its queued replies and close its side; then whatever is left is
    /// closed at once and its queued replies are dropped.
    ///
    /// It bounds the whole drain, not one reply: a client still reading its
    /// replies steadily when the grace ends loses the rest. The default, 20 s,
    /// fits inside the stop timeouts of the usual supervisors, so the server
    /// exits by itself before it is killed: Kubernetes sends SIGKILL 30 s after
    /// SIGTERM (`terminationGracePeriodSeconds`, which a `preStop` hook also
    /// spends), systemd 90 s after (`DefaultTimeoutStopSec`).
    public var shutdownGrace: Duration = .seconds(20)

    /// The defaults: 127.0.0.1:8000, backlog 511, no limits, a 20 s grace.
    public init() {}
}
