import ArgumentParser
import Syscalls

/// `echo-load`: a load generator for the upper-case echo service.
@main
struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-load",
        abstract: "Load an upper-case echo server and check every byte of every reply.",
        discussion: """
            Opens --connections connections (in batches, retrying refused or timed-out connects; \
            in the closed loop each sends one message at once, and at most 256 are connecting \
            or awaiting that first reply, so that they never overflow the server's accept queue), \
            then keeps --pipeline messages of --size random bytes in flight on each (closed loop), \
            or sends --rate messages per second in all (open loop, latency from the scheduled send \
            time). Replies completed during --warmup are checked but not counted; then --duration \
            seconds are measured. In the closed loop the warm-up also lasts until every connection \
            has had a reply (at most --first-reply-timeout more), so that the least-served count measures the \
            server, not a handshake still being retransmitted. A progress line goes to standard error each second; the report \
            (or --json) to standard output.
            With --reconnect, a connection the server ends cleanly (every reply delivered, then \
            end of input) is replaced by a new one and counted, not an error; with \
            --resend-unanswered also one that ends with replies owed, whose unanswered messages \
            are sent again on its replacement. --connection-lifetime N closes each connection \
            after N replies and opens a new one (short connections).
            Exit status: 0 when every reply matched and no connection failed; 1 otherwise \
            (mismatches, resets, unexpected EOFs, failed connects, connections never answered).
            """
    )

    @Option(help: "The numeric IPv4 or IPv6 address of the server.")
    var host = "127.0.0.1"

    @Option(help: "The server's port.")
    var port: UInt16 = 8000

    @Option(help: "Concurrent connections, up to what the descriptor limit allows.")
    var connections = 100

    @Option(help: "Seconds measured, after the warm-up.")
    var duration = 10.0

    @Option(help: "Seconds of load before measuring; their replies are checked, not counted.")
    var warmup = 1.0

    @Option(help: "Bytes per message.")
    var size = 64

    @Option(help: "Messages in flight per connection.")
    var pipeline = 1

    @Option(help: "Open loop: messages per second in all, spread evenly over the connections (default: closed loop).")
    var rate: Double?

    @Flag(help: "Print one JSON object instead of the text report.")
    var json = false

    @Option(help: "Seconds a connect may take before it is retried.")
    var connectTimeout = 5.0

    // 30 s: past the fifth of TCP's doubling retransmissions (1 + 2 + 4 + 8 s)
    // of a handshake dropped by a full accept queue; a CI run under
    // ThreadSanitizer once needed 16.9 s for a first reply.
    @Option(
        help: """
            Closed loop: seconds past --warmup to wait for every connection's first reply \
            before the window opens anyway.
            """)
    var firstReplyTimeout = 30.0

    @Option(help: "Seed of the payload's random bytes.")
    var seed: UInt64 = 1

    @Option(help: "The server's process id: report its CPU time and memory over the measured window.")
    var serverPID: Int32?

    @Flag(
        help: """
            Replace a connection the server ends cleanly (all replies delivered, then \
            end of input) with a new one, counted in reconnects; a reset, a wrong byte or an end of \
            input with replies owed stay errors.
            """)
    var reconnect = false

    @Flag(
        help: """
            With --reconnect: a connection the server ends with replies owed is replaced too, and \
            the messages it did not answer are sent again on the new one (counted in resent). \
            For a service whose requests may be repeated, as this one's may.
            """)
    var resendUnanswered = false

    @Option(help: "Close each connection after this many replies and open a new one (short connections).")
    var connectionLifetime: Int?

    /// Descriptors kept for everything but the connections: standard
    /// streams, epoll, the timer, and a margin.
    static let reservedDescriptors = 16

    func validate() throws {
        guard SocketAddress(host: host, port: port) != nil else {
            throw ValidationError("--host must be a numeric IPv4 or IPv6 address, not '\(host)'")
        }
        guard port > 0 else { throw ValidationError("--port must be in 1...65535") }
        guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        guard duration > 0 && duration <= 1e6 else { throw ValidationError("--duration must be in (0, 1e6] seconds") }
        guard warmup >= 0 && warmup <= 1e6 else { throw ValidationError("--warmup must be in [0, 1e6] seconds") }
        guard (1...(64 << 20)).contains(size) else { throw ValidationError("--size must be in 1...67108864 bytes") }
        guard (1...65536).contains(pipeline) else { throw ValidationError("--pipeline must be in 1...65536") }
        if let serverPID, system_read_file("/proc/\(serverPID)/stat") == nil {
            throw ValidationError("--server-pid \(serverPID): no such process")
        }
        if let rate, !(rate > 0 && rate <= 1e9) { throw ValidationError("--rate must be in (0, 1e9] messages/s") }
        guard connectTimeout > 0 && connectTimeout <= 3600 else {
            throw ValidationError("--connect-timeout must be in (0, 3600] seconds")
        }
        guard firstReplyTimeout >= 0 && firstReplyTimeout <= 3600 else {
            throw ValidationError("--first-reply-timeout must be in [0, 3600] seconds")
        }
        if let connectionLifetime, connectionLifetime < 1 {
            throw ValidationError("--connection-lifetime must be at least 1 message")
        }
        if resendUnanswered && !reconnect { throw ValidationError("--resend-unanswered needs --reconnect") }
    }

    func run() throws {
        let limit = system_setrlimit_raise_nofile()
        let needed = connections + Self.reservedDescriptors
        guard UInt64(needed) <= limit else {
            let most = max(0, Int(limit) - Self.reservedDescriptors)
            throw ValidationError(
                "--connections \(connections) needs about \(needed) descriptors, but this process may open "
                    + "\(limit) (RLIMIT_NOFILE, soft limit raised to the hard limit); use --connections \(most) "
                    + "or fewer, or raise the hard limit (ulimit -Hn)"
            )
        }
        let plan = LoadPlan(
            target: SocketAddress(host: host, port: port)!,
            connections: connections,
            size: size,
            pipeline: pipeline,
            rate: rate,
            warmupSeconds: warmup,
            durationSeconds: duration,
            connectTimeoutSeconds: connectTimeout,
            firstReplyTimeoutSeconds: firstReplyTimeout,
            seed: seed,
            serverPID: serverPID,
            reconnect: reconnect,
            resendUnanswered: resendUnanswered,
            connectionLifetime: connectionLifetime.map { UInt64($0) }
        )
        let payload = Payload(size: size, seed: seed)
        var loop: LoadLoop
        do { loop = try LoadLoop(plan: plan, payload: payload) } catch {
            system_write_stderr("echo-load: \(error)\n")
            throw ExitCode(1)
        }
        let result = loop.run()
        print(json ? Report.json(result) : Report.text(result))
        system_fflush_stdout()
        if result.established == 0 {
            system_write_stderr("echo-load: no connection to \(plan.target) could be established\n")
        }
        if result.errors.total > 0 {
            system_write_stderr("echo-load: \(result.errors.total) errors; exit status 1\n")
            throw ExitCode(1)
        }
    }
}

/// A validated run: what `LoadLoop` needs, free of command-line types.
struct LoadPlan {
    let target: SocketAddress
    let connections: Int
    let size: Int
    let pipeline: Int
    /// Messages per second in all (open loop), or `nil` (closed loop).
    let rate: Double?
    let warmupSeconds: Double
    let durationSeconds: Double
    let connectTimeoutSeconds: Double
    let firstReplyTimeoutSeconds: Double
    let seed: UInt64
    let serverPID: Int32?
    /// Replace a connection the server ends cleanly.
    var reconnect = false
    /// Also replace one it ends with replies owed, sending those messages again.
    var resendUnanswered = false
    /// Messages per connection before it is closed and replaced, or `nil`.
    var connectionLifetime: UInt64? = nil

    /// Whether connections are replaced while the run goes on.
    var replacesConnections: Bool { reconnect || connectionLifetime != nil }

    var warmupNanoseconds: Int64 { Int64(warmupSeconds * 1e9) }
    var durationNanoseconds: Int64 { Int64(durationSeconds * 1e9) }
    var connectTimeoutNanoseconds: Int64 { Int64(connectTimeoutSeconds * 1e9) }
    var firstReplyTimeoutNanoseconds: Int64 { Int64(firstReplyTimeoutSeconds * 1e9) }
}
