import Reactor
import SystemPackage

/// A minimal HTTP/1.1 server for one resource, `GET /metrics`: what a
/// Prometheus scraper asks for. It runs on an event loop beside the service
/// (a `TCPListener` and a `TCPConnection` per scrape), and answers each
/// request once, then closes the connection.
///
/// - `GET /metrics` (a query string is ignored): `render` is asked for the
///   body, and the reply is `200 OK`, `Content-Type:` `contentType`, with
///   `Content-Length`. `render` may answer later (after other loops have
///   done something), never blocking the loop.
/// - `GET` of another path: `404 Not Found`. Any other method: `405 Method
///   Not Allowed` with `Allow: GET`.
/// - A request line or header line that is not HTTP: `400 Bad Request`, as
///   soon as the line is complete. An HTTP version other than 1.x: `505`.
/// - A head (request line and headers) longer than `Options.maxHeadBytes`:
///   `431 Request Header Fields Too Large`.
/// - A head not complete within `Options.timeout` of the connection's
///   arrival: `408 Request Timeout`; a body `render` has not given by then:
///   `503 Service Unavailable`. A client that has its reply but keeps the
///   connection open past the timeout (past one more second, after a late
///   reply) is cut off.
/// - At most `Options.maxConnections` connections at once; more are closed
///   as they arrive.
///
/// Every reply says `Connection: close`; the connection sends its reply,
/// then its end of input, and closes once the client has closed its side.
/// A request body, or a second request, is read and dropped.
///
/// ```swift
/// let endpoint = try MetricsEndpoint(loop: loop, port: 9100) { respond in
///     respond(Array("up 1\n".utf8))
/// }
/// print("metrics on \(endpoint.localAddress)")
/// ```
public final class MetricsEndpoint: TCPConnectionHandler {
    /// The limits of a `MetricsEndpoint`.
    public struct Options: Sendable {
        /// The path served; any other is `404`.
        public var path = "/metrics"
        /// The longest head (request line, headers and the blank line that
        /// ends them) accepted, in bytes; a longer one is `431`.
        public var maxHeadBytes = 8 * 1024
        /// How long a connection may take, from its arrival, to send its
        /// head (then `408`) and to get its reply (then `503`); past it, the
        /// connection is closed.
        public var timeout: Duration = .seconds(10)
        /// The most connections open at once; more are closed as they arrive.
        public var maxConnections = 16
        /// The kernel's queue of connections not yet accepted.
        public var backlog: CInt = 64

        /// The defaults: `/metrics`, an 8 KiB head, 10 s, 16 connections.
        public init() {}
    }

    /// Hands `respond` the body of a `200` reply. `respond` must be called
    /// on the endpoint's loop, at most once; it may be called later, from
    /// work the loop runs (a job sent with `EventLoopHandle.execute`).
    public typealias Render = (_ respond: @escaping (_ body: [UInt8]) -> Void) -> Void

    /// The `Content-Type` of a `200` reply: Prometheus's text format, version 0.0.4.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The bound address, with the real port when 0 was asked for.
    public private(set) var localAddress: Endpoint

    /// How many connections are open.
    public var openConnections: Int { exchanges.count }

    /// How many replies were sent, by status code.
    public private(set) var repliesSent: [Int: Int] = [:]

    private unowned let loop: any EventLoopContext
    private let options: Options
    private let render: Render
    private var listener: TCPListener?
    private var exchanges: [ObjectIdentifier: Exchange] = [:]

    /// Listens on `host:port` and serves scrapes on `loop`.
    ///
    /// - Parameters:
    ///   - loop: the loop that runs the endpoint, and calls `render`. Held
    ///     `unowned`: it must outlive the endpoint.
    ///   - host: a numeric address; 127.0.0.1 unless told, so that only this
    ///     machine can scrape.
    ///   - port: the port; 0 picks a free one (see `localAddress`).
    ///   - options: the path and the limits.
    ///   - render: asked for the body of each `200` reply.
    /// - Throws: `SocketError` for a bad address or a port in use.
    public init(
        loop: any EventLoopContext,
        host: String = "127.0.0.1",
        port: UInt16,
        options: Options = Options(),
        render: @escaping Render
    ) throws(SocketError) {
        self.loop = loop
        self.options = options
        self.render = render
        var listenerOptions = TCPListener.Options()
        listenerOptions.backlog = options.backlog
        listenerOptions.maxConnections = max(options.maxConnections, 1)
        listenerOptions.acceptsPerWakeup = 16
        // What was asked for, until the listener says what it is bound to.
        localAddress = Endpoint(host: host, port: port)
        let listener = try TCPListener(loop: loop, host: host, port: port, options: listenerOptions) {
            [unowned self] in self.accept($0)
        }
        self.listener = listener
        localAddress = listener.localAddress
    }

    /// Stops listening and closes every connection at once.
    public func close() {
        listener?.close()
        listener = nil
        for exchange in exchanges.values { exchange.connection.abort() }
    }

    /// Reads the head; once it is complete (or cannot be), replies.
    public func connection(_ connection: TCPConnection, didRead bytes: UnsafeMutableRawBufferPointer) {
        guard let exchange = exchanges[ObjectIdentifier(connection)], exchange.phase == .readingHead else { return }
        // Keep one byte past the bound: a head that fills it exactly may still be complete.
        let room = options.maxHeadBytes + 1 - exchange.head.count
        let scanFrom = max(exchange.head.count - 3, 0)
        exchange.head.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes.prefix(room)))
        switch HTTPHead.parse(exchange.head, scanningFrom: scanFrom, limit: options.maxHeadBytes) {
        case .incomplete: return
        case .tooLarge: reply(exchange, status: 431)
        case .malformed: reply(exchange, status: 400)
        case .unsupportedVersion: reply(exchange, status: 505)
        case .request(let method, let target):
            if method != "GET" {
                reply(exchange, status: 405, headers: "Allow: GET\r\n")
            } else if target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first
                != Substring(options.path)
            {
                reply(exchange, status: 404)
            } else {
                exchange.phase = .rendering
                render { [weak self, weak exchange] body in
                    guard let self, let exchange, exchange.phase == .rendering else { return }
                    self.reply(exchange, status: 200, contentType: Self.contentType, body: body)
                }
            }
        }
    }

    /// Forgets the connection.
    public func connectionDidClose(_ connection: TCPConnection, reason: TCPConnection.CloseReason) {
        guard let exchange = exchanges.removeValue(forKey: ObjectIdentifier(connection)) else { return }
        exchange.phase = .done
        if let deadline = exchange.deadline { loop.cancel(deadline) }
        exchange.deadline = nil
        listener?.connectionDidClose()
    }

    private func accept(_ fileDescriptor: FileDescriptor) {
        guard
            let connection = try? TCPConnection(loop: loop, fileDescriptor: fileDescriptor, handler: self)
        else {
            // TCPConnection closed it.
            listener?.connectionDidClose()
            return
        }
        let exchange = Exchange(connection)
        exchanges[ObjectIdentifier(connection)] = exchange
        exchange.deadline = loop.schedule(after: options.timeout) { [weak self, weak exchange] in
            guard let self, let exchange else { return }
            switch exchange.phase {
            case .readingHead: self.reply(exchange, status: 408)
            case .rendering: self.reply(exchange, status: 503)
            case .done: return exchange.connection.abort()
            }
            // A second for the client to take the late reply and close.
            exchange.deadline = self.loop.schedule(after: .seconds(1)) { [weak exchange] in
                exchange?.connection.abort()
            }
        }
    }

    /// Sends the reply, then lingers: the client reads it and closes, and
    /// the connection closes (or is cut off at its deadline).
    private func reply(
        _ exchange: Exchange, status: Int, headers: String = "", contentType: String = "text/plain; charset=utf-8",
        body: [UInt8]? = nil
    ) {
        exchange.phase = .done
        exchange.head = []
        let reason = Self.reasons[status] ?? "Error"
        let body = body ?? Array("\(status) \(reason)\n".utf8)
        var reply = Array(
            ("HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
                + "Connection: close\r\n\(headers)\r\n").utf8)
        reply += body
        repliesSent[status, default: 0] += 1
        reply.withUnsafeBytes { exchange.connection.write($0) }
        // Lingering, not closing: a close with request bytes unread would
        // reset the connection, and the client could lose the reply.
        exchange.connection.closeLingering()
    }

    private static let reasons = [
        200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
        431: "Request Header Fields Too Large", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
    ]

    /// One connection's request.
    private final class Exchange {
        enum Phase { case readingHead, rendering, done }

        let connection: TCPConnection
        var phase = Phase.readingHead
        var head: [UInt8] = []
        var deadline: TimerID?

        init(_ connection: TCPConnection) { self.connection = connection }
    }
}

/// What the bytes of a request head, so far, amount to.
enum HTTPHead: Equatable {
    /// Not complete yet, and fine so far.
    case incomplete
    /// Longer than the limit, and not complete within it.
    case tooLarge
    /// The request line or a header line is not HTTP.
    case malformed
    /// HTTP, but not 1.x.
    case unsupportedVersion
    /// A complete head: its method and its request target.
    case request(method: String, target: String)

    /// Parses `bytes`, where the end of the head (an empty line) is looked
    /// for from `scanningFrom` on (the bytes before it were scanned before).
    /// Lines end with CRLF, or a bare LF. Only the request line and the
    /// form of each header line are checked; no header is interpreted.
    static func parse(_ bytes: [UInt8], scanningFrom: Int = 0, limit: Int) -> HTTPHead {
        let lf = UInt8(ascii: "\n")
        // The end of the head: LF, an optional CR, LF.
        var end: Int?
        var index = max(scanningFrom, 0)
        while index < bytes.count {
            if bytes[index] == lf {
                var next = index + 1
                if next < bytes.count && bytes[next] == UInt8(ascii: "\r") { next += 1 }
                if next < bytes.count && bytes[next] == lf {
                    end = next + 1
                    break
                }
            }
            index += 1
        }
        // The request line can be judged as soon as it is complete.
        guard let firstLF = bytes.firstIndex(of: lf) else { return bytes.count > limit ? .tooLarge : .incomplete }
        guard let verdict = requestLine(bytes[..<firstLF]) else { return .malformed }
        guard case .request = verdict else { return verdict }
        guard let end else { return bytes.count > limit ? .tooLarge : .incomplete }
        guard end <= limit else { return .tooLarge }
        // Each header line: a field name, a colon, a value; no folding.
        var lineStart = firstLF + 1
        while lineStart < end {
            let lineEnd = bytes[lineStart..<end].firstIndex(of: lf) ?? end
            let line = trimCR(bytes[lineStart..<lineEnd])
            if !line.isEmpty && !isHeaderLine(line) { return .malformed }
            lineStart = lineEnd + 1
        }
        return verdict
    }

    /// `METHOD SP target SP HTTP/x.y`: a request, `.unsupportedVersion`, or
    /// `nil` if it is not a request line.
    private static func requestLine(_ raw: ArraySlice<UInt8>) -> HTTPHead? {
        let line = trimCR(raw)
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(isTokenByte) else { return nil }
        let target = parts[1]
        guard let first = target.first, first == UInt8(ascii: "/") || (target.count == 1 && first == UInt8(ascii: "*")),
            target.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return nil }
        let version = Array(parts[2])
        let prefix = Array("HTTP/".utf8)
        guard version.count == 8, version.starts(with: prefix), isDigit(version[5]), version[6] == UInt8(ascii: "."),
            isDigit(version[7])
        else { return nil }
        if version[5] != UInt8(ascii: "1") { return .unsupportedVersion }
        return .request(
            method: String(decoding: parts[0], as: UTF8.self), target: String(decoding: target, as: UTF8.self))
    }

    /// `name: value`, the name a token; the value of visible characters,
    /// spaces and tabs.
    private static func isHeaderLine(_ line: ArraySlice<UInt8>) -> Bool {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
            line[..<colon].allSatisfy(isTokenByte)
        else { return false }
        return line[(colon + 1)...].allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }

    private static func trimCR(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        line.last == UInt8(ascii: "\r") ? line.dropLast() : line
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// RFC 9110's `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default: Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}
