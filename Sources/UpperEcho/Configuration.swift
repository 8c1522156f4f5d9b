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
    /// How long a graceful shutdown may take to deliver queued replies.
    public var shutdownGrace: Duration = .seconds(2)
    /// Print each event and payload, as the lesson's program does.
    public var verbose = false

    /// The defaults: 127.0.0.1:8000 on epoll, backlog 511, no limits.
    public init() {}
}
