import Metrics
import Prometheus
import Reactor
import Syscalls
import UpperEcho

/// `--metrics-port`: every loop's `UpperEchoMetrics` in one Prometheus
/// registry (the process's swift-metrics backend), served by a
/// `MetricsEndpoint` on loop 0.
///
/// A scrape asks every loop to flush its metrics, each on its own thread
/// (`EventLoopHandle.execute`); each loop then tells loop 0, and loop 0
/// renders the registry once the last has. No loop waits for another: a
/// scrape is a few jobs, and the reply goes out when they have run.
final class MetricsExport: @unchecked Sendable {
    // @unchecked: `meters[K]` is used only on loop K's thread (made in its
    // set-up, then flushed in work sent to it through its handle);
    // `endpoint`, `rounds` and `nextRound` only on loop 0's. The lists
    // themselves sit behind their locks; the registry is Sendable.
    private let registry = PrometheusCollectorRegistry()
    private let meters: Lock<[UpperEchoMetrics?]>
    private let handles: Lock<[EventLoopHandle?]>
    private let address = Lock<Endpoint?>(nil)
    private let count: Int
    private var endpoint: MetricsEndpoint?
    private var rounds: [Int: (waiting: Int, respond: ([UInt8]) -> Void)] = [:]
    private var nextRound = 0

    /// Makes the registry the process's metrics backend, for `count` loops.
    init(loops count: Int) {
        self.count = count
        meters = Lock(Array(repeating: nil, count: count))
        handles = Lock(Array(repeating: nil, count: count))
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    /// The address the endpoint listens on, once loop 0 has made it.
    var localAddress: Endpoint? { address.withLock { $0 } }

    /// Counts loop `index`'s server; on that loop's thread, in its set-up.
    func attach(_ server: any EchoServer, index: Int, loop: any EventLoopContext) {
        let metrics = UpperEchoMetrics(server: server, loop: loop, loopIndex: index)
        meters.withLock { $0[index] = metrics }
        handles.withLock { $0[index] = loop.handle }
    }

    /// Serves the endpoint on 127.0.0.1:`port`; on loop 0's thread, in its
    /// set-up. An error names `--metrics-port`, for the message at start.
    func serve(port: UInt16, loop: any EventLoopContext) throws(SocketError) {
        let endpoint: MetricsEndpoint
        do {
            endpoint = try MetricsEndpoint(loop: loop, port: port) { [unowned self] respond in self.scrape(respond) }
        } catch {
            throw SocketError(error.operation, error.errno, address: "\(error.address ?? "") for --metrics-port")
        }
        self.endpoint = endpoint
        address.withLock { $0 = endpoint.localAddress }
    }

    /// On loop 0: flushes every loop, then responds with the registry.
    private func scrape(_ respond: @escaping ([UInt8]) -> Void) {
        meters.withLock { $0[0] }?.flush()
        guard count > 1 else { return respond(registry.emitToBuffer()) }
        let round = nextRound
        nextRound += 1
        rounds[round] = (count - 1, respond)
        let all = handles.withLock { $0 }
        guard let loopZero = all[0] else { return }
        for index in 1..<count {
            all[index]?.execute { [unowned self] _ in
                self.meters.withLock { $0[index] }?.flush()
                loopZero.execute { [unowned self] _ in self.loopDidFlush(round) }
            }
        }
    }

    /// On loop 0: one more loop has flushed for `round`.
    private func loopDidFlush(_ round: Int) {
        guard var state = rounds[round] else { return }
        state.waiting -= 1
        guard state.waiting == 0 else {
            rounds[round] = state
            return
        }
        rounds[round] = nil
        state.respond(registry.emitToBuffer())
    }
}
