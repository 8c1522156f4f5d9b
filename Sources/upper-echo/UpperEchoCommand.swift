import ArgumentParser
import Logging
import Reactor
import Selectors
import Syscalls
import ReactorServiceLifecycle
import ServiceLifecycle
import UpperEcho

/// `upper-echo`: the lesson's server, built to survive real traffic.
@main
struct UpperEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upper-echo",
        abstract: "Echo every byte back with ASCII a-z upper-cased, over epoll, poll or select.",
        discussion: """
            Prints `listening on HOST:PORT (BACKEND)` once it accepts connections.
            SIGINT or SIGTERM: accept the connections already queued, answer what has arrived, deliver
            the replies (for --shutdown-grace at most), exit 0;
            a second SIGINT or SIGTERM stops at once.
            SIGHUP: print one `stats ...` line with the server's counters (with several loops,
            a `loop=K ...` line per loop first).
            --loops N runs N event loops on N threads (default: the CPUs this process may use);
            --balance says how connections are spread over them.
            --metrics-port P serves Prometheus metrics at http://127.0.0.1:P/metrics and prints
            `metrics on 127.0.0.1:PORT` after the listening line.
            Try it: `nc 127.0.0.1 8000`, type a line, get it back upper-cased.
            """,
        version: "upper-echo \(upperEchoVersion)"
    )

    @Option(help: "The IPv4 or IPv6 address, or a host name resolved once at start, to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on; 0 picks a free one.")
    var port: UInt16 = 8000

    @Option(help: "The readiness backend: epoll, poll or select.")
    var selector: SelectorKind = .epoll

    @Option(
        help: ArgumentHelp(
            "How many event loops, each on its own thread.",
            discussion: "Default: the CPUs in the process's affinity mask (`taskset -c 0` gives 1).",
            valueName: "n"))
    var loops: Int?

    @Option(
        help: ArgumentHelp(
            "How connections are spread over the loops: reuseport, acceptor or acceptor-round-robin.",
            discussion: """
                reuseport: one SO_REUSEPORT socket per loop, the kernel picks. acceptor: loop 0 accepts and
                hands each connection to the loop with the fewest; acceptor-round-robin: to each loop in turn.
                """))
    var balance: Balance = .reusePort

    @Option(
        help: ArgumentHelp(
            "How connections are served: callbacks or async.",
            discussion: """
                callbacks: a handler called on the loop (UpperEchoServer). async: one task per connection on \
                the loop's own thread, through AsyncTCPConnection (AsyncUpperEchoServer). The same service, \
                limits, counters and signals either way.
                """))
    var api: ServedAPI = .callbacks

    @Option(help: "The kernel's queue of connections not yet accepted.")
    var backlog: Int32 = 511

    @Option(help: "Close connections beyond this many as soon as they arrive (default: no limit).")
    var maxConnections: Int?

    @Option(help: "Close a connection after this many seconds without traffic (default: never).")
    var idleTimeout: Double?

    @Option(
        help: ArgumentHelp(
            "How long a shutdown waits for clients to take their queued replies, in seconds.",
            discussion: "After that, what is left is closed and dropped. 0 closes everything at once.",
            valueName: "seconds"))
    var shutdownGrace: Double = 20

    @Option(
        help: ArgumentHelp(
            "Serve Prometheus metrics at http://127.0.0.1:<port>/metrics; 0 picks a free port.",
            discussion: "Off by default. Only 127.0.0.1: put a proxy in front to scrape from elsewhere.",
            valueName: "port"))
    var metricsPort: UInt16?

    @Flag(help: "Print every event and payload, as the lesson's program does.")
    var verbose = false

    @Flag(
        help: ArgumentHelp(
            "Check the loops as they run, and log what is wrong.",
            discussion: """
                Logs a handler that runs over 100 ms, a descriptor that keeps a loop waking without \
                moving a byte, and (epoll) every second, any registration on which the loop's table \
                and the kernel's list disagree.
                """))
    var diagnose = false

    @Option(help: "The log level on standard error: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .notice

    func validate() throws {
        if let maxConnections, maxConnections < 1 { throw ValidationError("--max-connections must be at least 1") }
        if let idleTimeout, !(idleTimeout > 0) {
            throw ValidationError("--idle-timeout must be a positive number of seconds")
        }
        if !(shutdownGrace >= 0 && shutdownGrace <= 86_400) {
            throw ValidationError("--shutdown-grace must be a number of seconds from 0 to 86400")
        }
        if backlog < 1 { throw ValidationError("--backlog must be at least 1") }
        if let loops, !(1...1024).contains(loops) { throw ValidationError("--loops must be from 1 to 1024") }
        if let metricsPort, metricsPort != 0, metricsPort == port {
            throw ValidationError("--metrics-port must differ from --port")
        }
    }

    func run() throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        _ = system_sigaction_ignore(SignalNumber.brokenPipe)
        _ = system_setrlimit_raise_nofile()
        let addresses: [SocketAddress]
        switch system_getaddrinfo(host, port: port) {
        case .success(let found) where !found.isEmpty: addresses = found
        case .success:
            system_write_stderr("upper-echo: cannot resolve host \"\(host)\": no IPv4 or IPv6 address\n")
            throw ExitCode(1)
        case .failure(let error):
            system_write_stderr("upper-echo: cannot resolve host \"\(host)\": \(error)\n")
            throw ExitCode(1)
        }
        var configuration = Configuration()
        configuration.host = host
        configuration.port = port
        configuration.backlog = backlog
        configuration.maxConnections = maxConnections
        configuration.connection.idleTimeout = idleTimeout.map { .nanoseconds(Int64($0 * 1e9)) }
        configuration.shutdownGrace = .nanoseconds(Int64(shutdownGrace * 1e9))
        do {
            switch selector {
            case .epoll: try serve({ try EpollSelector<Int>() }, configuration, addresses)
            case .poll: try serve({ try PollSelector<Int>() }, configuration, addresses)
            case .select: try serve({ try SelectSelector<Int>() }, configuration, addresses)
            }
        } catch let error as SocketError {
            system_write_stderr("upper-echo: \(error)\n")
            throw ExitCode(1)
        } catch let error as SelectorError {
            system_write_stderr("upper-echo: \(error)\n")
            throw ExitCode(1)
        }
    }

    /// Runs the server on loops specialised for one backend, listening on
    /// the first of `addresses` that binds: on this thread with one loop, on
    /// a `LoopGroup` with more.
    private func serve<S: Selector & SendableMetatype>(
        _ selector: @escaping @Sendable () throws -> S, _ configuration: Configuration, _ addresses: [SocketAddress]
    ) throws where S.Data == Int {
        let count = loops ?? LoopGroup<S>.defaultLoopCount
        // The async API runs in a ServiceGroup, on a LoopGroup even for one loop.
        if count > 1 || api == .async { return try serveGroup(count, selector, configuration, addresses) }
        let logger = Logger(label: "upper-echo")
        let diagnosis = Diagnosis(enabled: diagnose, logger: logger)
        let export = metricsPort.map { _ in MetricsExport(loops: 1) }
        let loop = try EventLoop(
            selector: try selector(), options: diagnosis.options(loop: 0, metrics: export != nil))
        diagnosis.startAudits(on: loop, index: 0)
        let server = try firstServerThatBinds(addresses, loop, configuration, logger, makeVerbose())
        export?.attach(server, index: 0, loop: loop)
        if let export, let metricsPort { try export.serve(port: metricsPort, loop: loop) }
        let handled = [SignalNumber.interrupt, SignalNumber.terminate, SignalNumber.hangUp]
        let signals = try SignalSource(loop: loop, signals: handled) { signal in
            if signal == SignalNumber.hangUp {
                print(server.stats)
                system_fflush_stdout()
            } else if server.isShuttingDown {
                loop.stop()  // a second signal: stop now
            } else {
                logger.notice("signal \(signal): shutting down")
                server.shutdown()
            }
        }
        defer { signals.close() }
        print("listening on \(server.localAddress) (\(self.selector)\(apiSuffix))")
        printMetricsLine(export)
        try loop.run()
        logger.notice("stopped \(server.stats.pairs)")
    }

    /// Runs one server per loop of a `LoopGroup` of `count` loops (see
    /// `GroupServers` for the signals); with `--api async`, as the one
    /// service of a `ServiceGroup` (see `runInServiceGroup`). One loop binds
    /// its own socket; several share a `GroupListener`.
    private func serveGroup<S: Selector & SendableMetatype>(
        _ count: Int, _ selector: @escaping @Sendable () throws -> S, _ configuration: Configuration,
        _ addresses: [SocketAddress]
    ) throws where S.Data == Int {
        let logger = Logger(label: "upper-echo")
        if api == .async { startConcurrencyRuntime() }
        let listener = count > 1 ? try firstGroupThatBinds(addresses, count, configuration) : nil
        let servers = GroupServers(count, logger: logger)
        let verbose = makeVerbose()
        let diagnosis = Diagnosis(enabled: diagnose, logger: logger)
        let export = metricsPort.map { _ in MetricsExport(loops: count) }
        let metricsPort = metricsPort
        let withMetrics = export != nil
        let group = try LoopGroup(
            loops: count, optionsForLoop: { diagnosis.options(loop: $0, metrics: withMetrics) }, selector: selector
        ) { index, loop in
            diagnosis.startAudits(on: loop, index: index)
            let server: any EchoServer =
                switch (api, listener) {
                case (_, nil): try firstServerThatBinds(addresses, loop, configuration, logger, verbose)
                case (.callbacks, let listener?):
                    try UpperEchoServer(
                        loop: loop, group: listener, member: index, configuration: configuration, logger: logger,
                        verbose: verbose)
                case (.async, let listener?):
                    try AsyncUpperEchoServer(
                        loop: loop, group: listener, member: index, configuration: configuration, logger: logger,
                        verbose: verbose)
                }
            try servers.attach(server, index: index, loop: loop)
            export?.attach(server, index: index, loop: loop)
            if index == 0, let export, let metricsPort { try export.serve(port: metricsPort, loop: loop) }
        }
        // The serving tasks start once every loop's set-up has succeeded: a
        // task started on a loop that then never runs would never end.
        group.execute { index, loop in servers.start(index, on: loop) }
        if let listener {
            print("listening on \(listener.localAddress) (\(self.selector), \(count) loops, \(balance)\(apiSuffix))")
        } else {
            print("listening on \(servers.localAddress(of: 0)) (\(self.selector)\(apiSuffix))")
        }
        printMetricsLine(export)
        if api == .async { try runInServiceGroup(group, servers) } else { try group.join() }
        logger.notice("stopped \(servers.totals().pairs)")
    }

    /// Has the Swift Concurrency runtime open what it opens on first use (its
    /// worker threads, and libdispatch's epoll, eventfd and timerfd for its
    /// timers) before the server opens anything: the descriptors a started
    /// server holds are then the ones it keeps, and the numbers its
    /// connections get do not shift under a client that counted them (as
    /// select's limit of 1024 makes one do).
    private func startConcurrencyRuntime() {
        let started = Condition(false)
        Task {
            try? await Task.sleep(for: .milliseconds(1))
            started.update { $0 = true }
        }
        started.wait(until: { $0 }, then: { _ in })
    }

    /// Runs the loops as the one service of a `ServiceGroup`
    /// (swift-service-lifecycle): the group's graceful shutdown drains every
    /// loop. The signals stay the loops' (`GroupServers`): the first SIGINT
    /// or SIGTERM triggers the group's graceful shutdown, a second stops
    /// every loop at once, SIGHUP prints the counters, exactly as with
    /// callbacks. Returns once the group has finished and the loops' threads
    /// have ended.
    private func runInServiceGroup<S: Selector & SendableMetatype>(
        _ group: LoopGroup<S>, _ servers: GroupServers
    ) throws where S.Data == Int {
        let services = servers.serviceGroup(running: group)
        let finished = Condition<Result<Void, any Error>?>(nil)
        Task {
            let outcome: Result<Void, any Error>
            do {
                try await services.run()
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            finished.update { $0 = outcome }
        }
        let outcome = finished.wait(until: { $0 != nil }, then: { $0! })
        try outcome.get()
        try group.join()
        servers.waitForServingTasks()
    }

    /// What the listening line adds for the API: nothing for callbacks.
    private var apiSuffix: String { api == .async ? ", async" : "" }

    /// Prints `metrics on HOST:PORT` if metrics are served, and flushes
    /// standard output.
    private func printMetricsLine(_ export: MetricsExport?) {
        if let address = export?.localAddress { print("metrics on \(address)") }
        system_fflush_stdout()
    }

    /// The lesson's verbose printer, or `nil`.
    private func makeVerbose() -> (@Sendable (String) -> Void)? {
        guard verbose else { return nil }
        return {
            print($0)
            system_fflush_stdout()
        }
    }

    /// The port bound for `count` loops on the first of `addresses` that
    /// binds; if none does, the first one's error.
    private func firstGroupThatBinds(_ addresses: [SocketAddress], _ count: Int, _ configuration: Configuration)
        throws(SocketError) -> GroupListener
    {
        var firstError: SocketError?
        for address in addresses {
            do {
                return try GroupListener(
                    host: address.host, port: configuration.port, loops: count, balance: balance,
                    options: UpperEchoServer.listenerOptions(configuration))
            } catch {
                firstError = firstError ?? error
            }
        }
        throw firstError ?? SocketError("resolve", .invalidArgument, address: configuration.host)
    }

    /// A server on the first of `addresses` (a name's addresses, in the
    /// resolver's order) that binds; if none does, the first one's error.
    private func firstServerThatBinds(
        _ addresses: [SocketAddress],
        _ loop: any EventLoopContext,
        _ configuration: Configuration,
        _ logger: Logger,
        _ verbose: ((String) -> Void)?
    ) throws(SocketError) -> any EchoServer {
        var firstError: SocketError?
        for address in addresses {
            var attempt = configuration
            attempt.host = address.host
            do throws(SocketError) {
                switch api {
                case .callbacks:
                    return try UpperEchoServer(loop: loop, configuration: attempt, logger: logger, verbose: verbose)
                case .async:
                    return try AsyncUpperEchoServer(
                        loop: loop, configuration: attempt, logger: logger, verbose: verbose)
                }
            } catch {
                firstError = firstError ?? error
            }
        }
        throw firstError ?? SocketError("resolve", .invalidArgument, address: configuration.host)
    }
}

extension SelectorKind: ExpressibleByArgument {}

/// `--api`: which of the reactor's APIs serves the connections.
enum ServedAPI: String, ExpressibleByArgument, CaseIterable {
    /// `UpperEchoServer`: a handler the loop calls.
    case callbacks
    /// `AsyncUpperEchoServer`: a task per connection on the loop.
    case async
}

extension Balance: ExpressibleByArgument {
    /// `reuseport`, `acceptor` or `acceptor-round-robin`.
    public init?(argument: String) {
        switch argument {
        case "reuseport": self = .reusePort
        case "acceptor": self = .acceptor(.leastConnections)
        case "acceptor-round-robin": self = .acceptor(.roundRobin)
        default: return nil
        }
    }

    /// The values `--help` lists.
    public static var allValueStrings: [String] { ["reuseport", "acceptor", "acceptor-round-robin"] }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
