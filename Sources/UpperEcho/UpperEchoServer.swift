import Logging
import Reactor
import Selectors
import SystemPackage

/// The lesson's service on the reactor: every byte a client sends comes back,
/// with ASCII `a`-`z` upper-cased.
///
/// The hot path is the one docs/ARCHITECTURE.md draws: the loop reads into its
/// shared buffer, `Uppercase.apply` transforms it in place, and
/// `TCPConnection.write` sends it at once, copying only an unsent tail. No
/// allocation per chunk.
public final class UpperEchoServer: TCPConnectionHandler {
    // Declared first, so that what every chunk touches (`verbose`) sits in
    // the object's first cache line, ahead of the configuration and logger.
    private let verbose: ((String) -> Void)?
    // Counts of connections that closed; what open connections have done is
    // read from them (`stats`), so nothing is counted per chunk here.
    private var counters = ServerStats()
    private unowned let loop: any EventLoopContext
    private let configuration: Configuration
    private let logger: Logger
    // Set once by `init`, and kept after the shutdown closed it, for its counts.
    private var listener: TCPListener?
    // Connections that could not be watched (select's descriptor 1024).
    private var unwatchable = 0
    private var connections: [ObjectIdentifier: TCPConnection] = [:]
    private var shutdownTimer: TimerID?
    // During a drain: how long a connection that has received nothing waits for its first bytes.
    private var drainFirstInput: Duration = .zero

    /// The counters, up to date. Reading it visits every open connection
    /// (for the bytes they moved and their queues).
    public var stats: ServerStats {
        var current = counters
        if let listener {
            current.accepted = listener.acceptedCount
            current.refused = listener.refusedCount + unwatchable
            current.acceptPauses = listener.pauseCount
        }
        for connection in connections.values { Self.add(connection, to: &current) }
        return current
    }

    /// The address the server listens on, with the real port.
    public private(set) var localAddress: Endpoint

    /// Called once when a shutdown has finished (every connection closed or
    /// the grace period over). By default it stops the loop.
    public var onShutdownComplete: (() -> Void)?

    /// Whether `shutdown` was called.
    public private(set) var isShuttingDown = false

    /// Starts listening on `loop` as `configuration` says.
    ///
    /// - Parameters:
    ///   - loop: the loop to serve on, which runs every connection. The server
    ///     holds it `unowned`: the loop must outlive it.
    ///   - configuration: the address, the limits, the connections' options
    ///     and the shutdown grace.
    ///   - logger: receives each close (debug), the start of a shutdown
    ///     (info) and each accepted connection the loop cannot watch
    ///     (warning); by default a logger labelled `upper-echo`.
    ///   - verbose: called with one line per event and payload, as the
    ///     lesson's program prints them; `nil` prints nothing.
    /// - Throws: `SocketError` for a bad address or a port in use.
    public init(
        loop: any EventLoopContext,
        configuration: Configuration,
        logger: Logger = Logger(label: "upper-echo"),
        verbose: ((String) -> Void)? = nil
    ) throws(SocketError) {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        self.verbose = verbose
        // What was asked for, until the listener says what it is bound to.
        localAddress = Endpoint(host: configuration.host, port: configuration.port)
        onShutdownComplete = { [unowned loop] in loop.stop() }
        let listener = try TCPListener(
            loop: loop, host: configuration.host, port: configuration.port,
            options: Self.listenerOptions(configuration)
        ) { [unowned self] in self.accept($0) }
        self.listener = listener
        localAddress = listener.localAddress
    }

    /// Serves loop `member`'s part of `group` on `loop`: one server per loop
    /// of a `LoopGroup`, each made in that loop's set-up. The group's socket
    /// options and limits apply (see `GroupListener(host:port:loops:balance:options:stallLimit:)`
    /// and `listenerOptions`); `configuration` gives the rest (the
    /// connections' options, the shutdown grace).
    ///
    /// - Throws: `SocketError` if the loop's part of the group cannot be watched.
    public init(
        loop: any EventLoopContext,
        group: GroupListener,
        member: Int,
        configuration: Configuration,
        logger: Logger = Logger(label: "upper-echo"),
        verbose: ((String) -> Void)? = nil
    ) throws(SocketError) {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        self.verbose = verbose
        localAddress = group.localAddress
        onShutdownComplete = { [unowned loop] in loop.stop() }
        listener = try TCPListener(loop: loop, group: group, member: member) { [unowned self] in self.accept($0) }
    }

    /// The listener options `configuration` asks for: its backlog and its
    /// connection limit.
    public static func listenerOptions(_ configuration: Configuration) -> TCPListener.Options {
        var options = TCPListener.Options()
        options.backlog = configuration.backlog
        options.maxConnections = configuration.maxConnections
        return options
    }

    /// Upper-cases the bytes in place and writes them back.
    public func connection(_ connection: TCPConnection, didRead bytes: UnsafeMutableRawBufferPointer) {
        if let verbose {
            verbose("fd \(connection.fileDescriptor.rawValue) read \(bytes.count) bytes: \(pythonRepr(bytes))")
        }
        Uppercase.apply(bytes)
        connection.write(UnsafeRawBufferPointer(bytes))
    }

    /// Forgets the connection, and resumes accepting if descriptors ran out.
    public func connectionDidClose(_ connection: TCPConnection, reason: TCPConnection.CloseReason) {
        connections[ObjectIdentifier(connection)] = nil
        Self.add(connection, to: &counters)
        counters.countClose(reason, received: connection.bytesReceived, sent: connection.bytesSent)
        logger.debug("connection closed", metadata: ["reason": "\(reason)", "open": "\(connections.count)"])
        verbose?("connection closed: \(reason)")
        listener?.connectionDidClose()
        if isShuttingDown && connections.isEmpty { finishShutdown() }
    }

    /// Drains the server: lets no new connection in, and accepts every one
    /// whose handshake had begun (`TCPListener.refuseNewConnections()`; the
    /// listener closes when the drain is over);
    /// lets every connection answer the input that has already arrived, then
    /// deliver what is queued for it, send end of input and wait for its peer
    /// to close its side (`TCPConnection.closeLingeringAfterInput(firstInputWithin:)`).
    /// A connection that has not received a byte yet is first given up to
    /// half the grace, at most 1 s, for its first bytes: a client or a
    /// balancer that has just connected has its request on the way.
    /// After `grace` (by default the configuration's `shutdownGrace`) closes
    /// whatever is left, dropping its queue. Then calls `onShutdownComplete`.
    ///
    /// Bytes a client sends after the end of input left are dropped, never
    /// processed: what the client gets back before the end of input is the
    /// answer to every byte the server read, in order, so the bytes it got
    /// no answer for can be sent again elsewhere.
    public func shutdown(grace: Duration? = nil) {
        guard !isShuttingDown else { return }
        isShuttingDown = true
        let grace = grace ?? configuration.shutdownGrace
        // No new connection from now on; the ones whose handshake had begun
        // are accepted (closing the listener now would reset them), and the
        // listener closes when the drain is over.
        drainFirstInput = min(grace / 2, .seconds(1))
        listener?.refuseNewConnections()
        logger.info("shutting down", metadata: ["open": "\(connections.count)"])
        // Lingering: a plain close with input unread would reset the
        // connection and drop the replies still in the kernel's send buffer.
        for connection in connections.values {
            connection.closeLingeringAfterInput(firstInputWithin: drainFirstInput)
        }
        if connections.isEmpty { return finishShutdown() }
        shutdownTimer = loop.schedule(after: grace) { [weak self] in
            guard let self else { return }
            for connection in self.connections.values { connection.abort() }
            self.finishShutdown()
        }
    }

    /// Adds what `connection` moved to `stats`.
    private static func add(_ connection: TCPConnection, to stats: inout ServerStats) {
        stats.bytesIn += connection.bytesReceived
        stats.bytesOut += connection.bytesSent
        stats.peakQueued = max(stats.peakQueued, connection.peakQueuedBytes)
    }

    private func accept(_ fileDescriptor: FileDescriptor) {
        do {
            let connection = try TCPConnection(
                loop: loop, fileDescriptor: fileDescriptor, options: configuration.connection, handler: self)
            connections[ObjectIdentifier(connection)] = connection
            verbose?("fd \(fileDescriptor.rawValue) accepted")
            // Accepted during the drain: its handshake had begun before it.
            if isShuttingDown { connection.closeLingeringAfterInput(firstInputWithin: drainFirstInput) }
        } catch {
            // TCPConnection closed it. Select's limit (descriptor 1024) ends here.
            unwatchable += 1
            listener?.connectionDidClose()
            logger.warning("cannot watch a new connection", metadata: ["error": "\(error)"])
        }
    }

    private func finishShutdown() {
        listener?.close()
        if let shutdownTimer { loop.cancel(shutdownTimer) }
        shutdownTimer = nil
        let done = onShutdownComplete
        onShutdownComplete = nil
        done?()
    }
}

/// Bytes as Python prints them: `b'hello\n'`, printable ASCII as is, the rest
/// as escapes. What the lesson's `print(data)` would show, without its crash
/// on bytes that are not UTF-8.
func pythonRepr(_ bytes: UnsafeMutableRawBufferPointer) -> String {
    var text = "b'"
    for byte in bytes.prefix(256) {
        switch byte {
        case 0x5C: text += "\\\\"
        case 0x27: text += "\\'"
        case 0x0A: text += "\\n"
        case 0x0D: text += "\\r"
        case 0x09: text += "\\t"
        case 0x20...0x7E: text.unicodeScalars.append(Unicode.Scalar(byte))
        default: text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }
    }
    return text + (bytes.count > 256 ? "'..." : "'")
}
