import Logging
import Reactor
import Selectors
import SystemPackage

/// The lesson's service through the async API: one task per connection on
/// the loop's own thread (`AsyncTCPListener.serve`), each reading with
/// `AsyncTCPConnection.read(_:)` into the loop's buffer, upper-casing in
/// place, and writing back. The same limits, counters, idle timeout and
/// drain as `UpperEchoServer`.
///
/// ```swift
/// let server = try AsyncUpperEchoServer(loop: loop, configuration: configuration)
/// loop.handle.task { await server.run() }
/// try loop.run()  // until a shutdown has finished
/// ```
///
/// A read lends the loop's read buffer; the write that follows sends from
/// it before the task can suspend (a write copies what the kernel does not
/// take into the connection's queue first), so no other task reads into the
/// buffer in between and nothing is copied per message.
public final class AsyncUpperEchoServer: EchoServer, @unchecked Sendable {
    // @unchecked: used only on the loop's thread (its tasks run there).
    private unowned let loop: any EventLoopContext
    private let configuration: Configuration
    private let logger: Logger
    private let verbose: ((String) -> Void)?
    private let listener: AsyncTCPListener
    private var counters = ServerStats()
    private var connections: [ObjectIdentifier: AsyncTCPConnection] = [:]
    private var shutdownTimer: TimerID?
    private var drainFirstInput: Duration = .zero
    private var finished = false

    /// See `EchoServer.localAddress`.
    public let localAddress: Endpoint

    /// See `EchoServer.onShutdownComplete`. By default it stops the loop.
    public var onShutdownComplete: (() -> Void)?

    /// See `EchoServer.isShuttingDown`.
    public private(set) var isShuttingDown = false

    /// See `EchoServer.stats`.
    public var stats: ServerStats {
        var current = counters
        let tcp = listener.tcpListener
        current.accepted = tcp.acceptedCount
        current.refused = tcp.refusedCount + listener.unwatchableCount
        current.acceptPauses = tcp.pauseCount
        for connection in connections.values { Self.add(connection, to: &current) }
        return current
    }

    /// Starts listening on `loop` as `configuration` says; `run()` serves.
    ///
    /// - Parameters:
    ///   - loop: the loop whose tasks serve every connection; held `unowned`.
    ///   - configuration: the address, the limits, the connections' options
    ///     (water marks, idle timeout) and the shutdown grace.
    ///   - logger: receives each close (debug) and the start of a shutdown (info).
    ///   - verbose: one line per event and payload, as the lesson prints them.
    /// - Throws: `SocketError` for a bad address or a port in use.
    public convenience init(
        loop: any EventLoopContext, configuration: Configuration, logger: Logger = Logger(label: "upper-echo"),
        verbose: ((String) -> Void)? = nil
    ) throws(SocketError) {
        let listener = try AsyncTCPListener(
            loop: loop, host: configuration.host, port: configuration.port,
            options: UpperEchoServer.listenerOptions(configuration), connectionOptions: configuration.connection)
        self.init(loop: loop, listener: listener, configuration: configuration, logger: logger, verbose: verbose)
    }

    /// Serves loop `member`'s part of `group` (see
    /// `UpperEchoServer.init(loop:group:member:configuration:logger:verbose:)`).
    public convenience init(
        loop: any EventLoopContext, group: GroupListener, member: Int, configuration: Configuration,
        logger: Logger = Logger(label: "upper-echo"), verbose: ((String) -> Void)? = nil
    ) throws(SocketError) {
        let listener = try AsyncTCPListener(
            loop: loop, group: group, member: member, connectionOptions: configuration.connection)
        self.init(loop: loop, listener: listener, configuration: configuration, logger: logger, verbose: verbose)
    }

    /// Serves what `listener` accepts.
    private init(
        loop: any EventLoopContext, listener: AsyncTCPListener, configuration: Configuration, logger: Logger,
        verbose: ((String) -> Void)?
    ) {
        self.listener = listener
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        self.verbose = verbose
        localAddress = listener.localAddress
        onShutdownComplete = { [unowned loop] in loop.stop() }
        listener.onUnwatchable = { [logger] error in
            logger.warning("cannot watch a new connection", metadata: ["error": "\(error)"])
        }
    }

    /// Serves connections until the shutdown has closed the listener and
    /// every connection's task has ended. Run it in a task on the loop
    /// (`EventLoopHandle.task(_:)`).
    public func run() async {
        do {
            try await listener.serve { [unowned self] connection in await self.serve(connection) }
        } catch {
            // The loop stopped (or the task was cancelled): nothing more to serve.
            logger.debug("serving ended", metadata: ["error": "\(error)"])
        }
    }

    /// One connection, from its first byte to its close.
    private func serve(_ connection: AsyncTCPConnection) async {
        let key = ObjectIdentifier(connection)
        connections[key] = connection
        if isShuttingDown { connection.endInput(firstInputWithin: drainFirstInput) }
        let buffer = loop.readBuffer
        var reason = TCPConnection.CloseReason.closedLocally
        do throws(AsyncTCPError) {
            while true {
                let count = try await connection.read { [verbose] bytes in
                    verbose?("read \(bytes.count) bytes: \(pythonRepr(bytes))")
                    Uppercase.apply(bytes)
                    return bytes.count
                }
                guard let count else { break }
                // From the loop's buffer, before this task can suspend.
                try await connection.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            }
            if connection.peerFinished {
                // The peer finished: deliver the replies, then close.
                reason = .endOfInput
                try await connection.finish()
            } else {
                // A drain ended the input: deliver, send end of input, and
                // wait for the peer to close its side.
                await connection.closeLingering(timeout: configuration.shutdownGrace)
            }
        } catch .reset(let errno) {
            reason = .reset(errno)
        } catch .idleTimeout {
            reason = .idleTimeout
        } catch {
            reason = .closedLocally
        }
        connection.close()
        connections[key] = nil
        account(connection, reason)
    }

    private func account(_ connection: AsyncTCPConnection, _ reason: TCPConnection.CloseReason) {
        Self.add(connection, to: &counters)
        counters.countClose(reason, received: connection.bytesReceived, sent: connection.bytesSent)
        logger.debug("connection closed", metadata: ["reason": "\(reason)", "open": "\(connections.count)"])
        verbose?("connection closed: \(reason)")
        if isShuttingDown && connections.isEmpty { finishShutdown() }
    }

    private static func add(_ connection: AsyncTCPConnection, to stats: inout ServerStats) {
        stats.bytesIn += connection.bytesReceived
        stats.bytesOut += connection.bytesSent
        stats.peakQueued = max(stats.peakQueued, connection.peakQueuedBytes)
    }

    /// See `EchoServer.shutdown(grace:)`; the drain of
    /// `UpperEchoServer.shutdown(grace:)`, through `AsyncTCPConnection.endInput`.
    public func shutdown(grace: Duration? = nil) {
        loop.checkThread("AsyncUpperEchoServer.shutdown")
        guard !isShuttingDown else { return }
        isShuttingDown = true
        let grace = grace ?? configuration.shutdownGrace
        drainFirstInput = min(grace / 2, .seconds(1))
        listener.tcpListener.refuseNewConnections()
        logger.info("shutting down", metadata: ["open": "\(connections.count)"])
        for connection in connections.values { connection.endInput(firstInputWithin: drainFirstInput) }
        if connections.isEmpty { return finishShutdown() }
        shutdownTimer = loop.schedule(after: grace) { [weak self] in
            guard let self else { return }
            for connection in self.connections.values { connection.close() }
            self.finishShutdown()
        }
    }

    private func finishShutdown() {
        guard !finished else { return }
        finished = true
        listener.close()
        if let shutdownTimer { loop.cancel(shutdownTimer) }
        shutdownTimer = nil
        let done = onShutdownComplete
        onShutdownComplete = nil
        done?()
    }
}
