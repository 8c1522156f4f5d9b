import Metrics
import Reactor

/// One server's counters (an `UpperEchoServer` or an
/// `AsyncUpperEchoServer`), and its loop's `LoopMetrics`, as swift-metrics
/// metrics: counters and a gauge with a `loop` dimension (the
/// loop's index in its group, `0` for a lone loop), for whatever backend the
/// program bootstrapped (`MetricsSystem.bootstrap`). The library never
/// bootstraps one.
///
/// Nothing here runs per chunk. The server goes on counting as it always
/// does (`ServerStats`: plain integer adds per connection), and the loop
/// keeps its `LoopMetrics` when made with `LoopOptions.metrics`. `flush()`
/// reads both and adds what changed since the last flush to the metrics.
/// It runs on the loop's thread, from a repeating timer (every second by
/// default) and whenever the program wants the metrics exact, such as right
/// before a scrape.
///
/// ```swift
/// let loop = try EventLoop(selector: try EpollSelector<Int>(), options: LoopOptions(metrics: true))
/// let server = try UpperEchoServer(loop: loop, configuration: Configuration())
/// let metrics = UpperEchoMetrics(server: server, loop: loop)
/// // on the loop's thread, before reading the backend:
/// metrics.flush()
/// ```
///
/// Each flush reads the server's `stats`, which visits every open
/// connection: a flush costs a few nanoseconds per open connection.
public final class UpperEchoMetrics {
    /// The metrics' names, as a Prometheus backend shows them.
    public enum Name: String, CaseIterable, Sendable {
        /// Counter: connections accepted, refused ones included (`ServerStats.accepted`).
        case connectionsAccepted = "upper_echo_connections_accepted_total"
        /// Counter: connections closed, refused ones not included (`ServerStats.closed`).
        case connectionsClosed = "upper_echo_connections_closed_total"
        /// Counter: connections a client reset while replies were owed (`ServerStats.resets`).
        case connectionsReset = "upper_echo_connections_reset_total"
        /// Counter: connections reset with nothing owed, as health checks
        /// do (`ServerStats.probeResets`).
        case probeResets = "upper_echo_probe_resets_total"
        /// Counter: connections closed on arrival (`ServerStats.refused`).
        case connectionsRefused = "upper_echo_connections_refused_total"
        /// Counter: bytes received from clients (`ServerStats.bytesIn`).
        case bytesReceived = "upper_echo_bytes_received_total"
        /// Counter: bytes the kernel took for clients (`ServerStats.bytesOut`).
        case bytesSent = "upper_echo_bytes_sent_total"
        /// Counter: times accepting paused for want of descriptors (`ServerStats.acceptPauses`).
        case acceptPauses = "upper_echo_accept_pauses_total"
        /// Gauge: connections open at the last flush (`ServerStats.open`).
        case connectionsOpen = "upper_echo_connections_open"
        /// Counter: loop iterations (`LoopMetrics.iterations`).
        case loopIterations = "reactor_loop_iterations_total"
        /// Floating-point counter: seconds the loop spent working rather
        /// than waiting (`LoopMetrics.busyNanoseconds`).
        case loopBusySeconds = "reactor_loop_busy_seconds_total"
        /// Counter: readiness events the loop dispatched (`LoopMetrics.eventsDispatched`).
        case loopEvents = "reactor_loop_events_total"

        /// Whether the metric comes from the loop (`LoopMetrics`) rather
        /// than the server: present only for a loop that keeps metrics.
        public var isLoopMetric: Bool {
            switch self {
            case .loopIterations, .loopBusySeconds, .loopEvents: true
            default: false
            }
        }
    }

    /// The name of the dimension (the Prometheus label) that holds the loop's index.
    public static let loopDimension = "loop"

    private let server: any EchoServer
    private unowned let loop: any EventLoopContext
    private let accepted: Counter
    private let closed: Counter
    private let resets: Counter
    private let probeResets: Counter
    private let refused: Counter
    private let bytesIn: Counter
    private let bytesOut: Counter
    private let acceptPauses: Counter
    private let open: Gauge
    // Only when the loop keeps metrics.
    private let iterations: Counter?
    private let busySeconds: FloatingPointCounter?
    private let events: Counter?
    // What the last flush saw: each flush adds what changed since.
    private var flushed = ServerStats()
    private var flushedLoop = LoopMetrics()
    private var timer: TimerID?

    /// Makes the metrics of `server`, which runs on `loop`, and flushes them
    /// every `interval`.
    ///
    /// Call it on the loop's thread. The loop metrics
    /// (`reactor_loop_*`) are made only if the loop keeps `LoopMetrics`
    /// (`LoopOptions.metrics`).
    ///
    /// - Parameters:
    ///   - server: the server to count. The metrics hold it.
    ///   - loop: the loop `server` runs on. Held `unowned`: it must outlive
    ///     these metrics.
    ///   - loopIndex: the value of the `loop` dimension: the loop's index in
    ///     its `LoopGroup`, 0 for a lone loop.
    ///   - interval: how often the repeating timer flushes; `nil` makes no
    ///     timer (call `flush()` yourself).
    ///   - factory: the backend; by default the one bootstrapped.
    public init(
        server: any EchoServer,
        loop: any EventLoopContext,
        loopIndex: Int = 0,
        flushingEvery interval: Duration? = .seconds(1),
        factory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.server = server
        self.loop = loop
        let dimensions = [(Self.loopDimension, "\(loopIndex)")]
        func counter(_ name: Name) -> Counter {
            Counter(label: name.rawValue, dimensions: dimensions, factory: factory)
        }
        accepted = counter(.connectionsAccepted)
        closed = counter(.connectionsClosed)
        resets = counter(.connectionsReset)
        probeResets = counter(.probeResets)
        refused = counter(.connectionsRefused)
        bytesIn = counter(.bytesReceived)
        bytesOut = counter(.bytesSent)
        acceptPauses = counter(.acceptPauses)
        open = Gauge(label: Name.connectionsOpen.rawValue, dimensions: dimensions, factory: factory)
        if loop.handle.metrics != nil {
            iterations = counter(.loopIterations)
            events = counter(.loopEvents)
            busySeconds = FloatingPointCounter(
                label: Name.loopBusySeconds.rawValue, dimensions: dimensions, factory: factory)
        } else {
            iterations = nil
            events = nil
            busySeconds = nil
        }
        open.record(0)
        if let interval {
            timer = loop.scheduleRepeating(every: interval) { [weak self] in self?.flush() }
        }
    }

    /// Adds to the metrics what the server and its loop counted since the
    /// last flush, and sets the open-connections gauge. Call it on the
    /// loop's thread.
    ///
    /// The loop's counts are those it published at the end of its last
    /// iteration (`EventLoopHandle.metrics`); the server's are exact.
    public func flush() {
        loop.checkThread(#function)
        let now = server.stats
        Self.advance(accepted, &flushed.accepted, now.accepted)
        Self.advance(closed, &flushed.closed, now.closed)
        Self.advance(resets, &flushed.resets, now.resets)
        Self.advance(probeResets, &flushed.probeResets, now.probeResets)
        Self.advance(refused, &flushed.refused, now.refused)
        Self.advance(bytesIn, &flushed.bytesIn, now.bytesIn)
        Self.advance(bytesOut, &flushed.bytesOut, now.bytesOut)
        Self.advance(acceptPauses, &flushed.acceptPauses, now.acceptPauses)
        open.record(now.open)
        guard let iterations, let events, let busySeconds, let loopNow = loop.handle.metrics else { return }
        Self.advance(iterations, &flushedLoop.iterations, loopNow.iterations)
        Self.advance(events, &flushedLoop.eventsDispatched, loopNow.eventsDispatched)
        if loopNow.busyNanoseconds > flushedLoop.busyNanoseconds {
            busySeconds.increment(by: Double(loopNow.busyNanoseconds - flushedLoop.busyNanoseconds) / 1e9)
            flushedLoop.busyNanoseconds = loopNow.busyNanoseconds
        }
    }

    /// Stops the repeating flush; `flush()` still works.
    public func stopFlushing() {
        if let timer { loop.cancel(timer) }
        timer = nil
    }

    /// Adds `now - last` to `counter` and moves `last` up to `now`; a
    /// count never goes back, so a smaller `now` adds nothing.
    private static func advance<T: BinaryInteger>(_ counter: Counter, _ last: inout T, _ now: T) {
        guard now > last else { return }
        counter.increment(by: now - last)
        last = now
    }
}
