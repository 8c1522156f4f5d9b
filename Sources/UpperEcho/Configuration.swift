import Reactor
import Selectors

/// Everything `upper-echo` can be told on its command line.
public struct Configuration: Sendable {
    /// The numeric address to listen on.
    public var host = "127.0.0.1"
    /// The port; 0 picks a free one.
    public var port: UInt16 = 8000
    /// The readiness backend.
    public var selector: SelectorKind = .epoll
    /// The kernel's accept queue.
    public var backlog: CInt = 511
    /// Connections beyond this many are closed as soon as they are accepted;
    /// `nil`: no limit but the descriptor limit.
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
    /// Print each event and payload, as the lesson's program does.
    public var verbose = false

    /// The defaults: 127.0.0.1:8000 on epoll, backlog 511, no limits.
    public init() {}
}
