import Reactor

/// What upper-echo asks of its server, whichever API serves the
/// connections: `UpperEchoServer` (callbacks) or `AsyncUpperEchoServer`
/// (async/await). Every member is used on the server's loop thread.
public protocol EchoServer: AnyObject {
    /// The counters, up to date.
    var stats: ServerStats { get }
    /// The address the server listens on, with the real port.
    var localAddress: Endpoint { get }
    /// Called once when a shutdown has finished.
    var onShutdownComplete: (() -> Void)? { get set }
    /// Whether `shutdown` was called.
    var isShuttingDown: Bool { get }
    /// Drains the server (see `UpperEchoServer.shutdown(grace:)`); `nil`:
    /// the configuration's grace.
    func shutdown(grace: Duration?)
}

extension EchoServer {
    /// Drains the server with the configuration's grace.
    public func shutdown() { shutdown(grace: nil) }
}

extension UpperEchoServer: EchoServer {}
