import Logging
import Reactor
import ReactorServiceLifecycle
import Selectors
import ServiceLifecycle
import Syscalls
import UpperEcho

/// The servers of an upper-echo on several loops, one per loop, and what
/// reaches all of them through loop 0, which takes the signals:
///
/// - SIGHUP: every loop reads its own server's counters, on its own thread;
///   the last to answer prints a `loop=K ...` line per loop, then the
///   `stats ...` totals.
/// - SIGINT or SIGTERM: every loop is sent its server's shutdown in the same
///   pass. A loop other than 0 stops once its own connections are done; loop
///   0 stops last, once every loop is done, so that a second SIGINT or
///   SIGTERM (which stops every loop at once) is heard until the end.
final class GroupServers: @unchecked Sendable {
    // @unchecked: `servers[K]` and `loops[K]` are used only on loop K's
    // thread (set in its set-up, then in work sent to it through its handle),
    // and by `totals()` once every loop's thread has ended; `signals` and
    // `running` only on loop 0's. The lists themselves sit behind `lock`.
    private let lock: Lock<[(any EchoServer)?]>
    private let handles: Lock<[EventLoopHandle?]>
    private let gathered = Lock<(round: Int, stats: [ServerStats?])>((0, []))
    private let logger: Logger
    private let count: Int
    private var signals: SignalSource?
    private var running: Int
    private var shuttingDown = false
    // Serving tasks started and not yet ended.
    private let serving = Condition(0)

    init(_ count: Int, logger: Logger) {
        self.count = count
        self.logger = logger
        running = count
        lock = Lock(Array(repeating: nil, count: count))
        handles = Lock(Array(repeating: nil, count: count))
    }

    /// Adopts loop `index`'s server, in that loop's set-up; loop 0's also
    /// takes the signals.
    func attach(_ server: any EchoServer, index: Int, loop: any EventLoopContext) throws {
        lock.withLock { $0[index] = server }
        handles.withLock { $0[index] = loop.handle }
        server.onShutdownComplete = { [unowned self, unowned loop] in
            if index != 0 { loop.stop() }
            self.onLoopZero { self.loopDidFinish(loop: $0) }
        }
        guard index == 0 else { return }
        let handled = [SignalNumber.interrupt, SignalNumber.terminate, SignalNumber.hangUp]
        signals = try SignalSource(loop: loop, signals: handled) { [unowned self] signal in
            if signal == SignalNumber.hangUp {
                self.printStats()
            } else if self.shuttingDown {
                self.eachHandle { $0.stop() }  // a second signal: stop now
            } else {
                self.shuttingDown = true
                self.logger.notice("signal \(signal): shutting down")
                if let first = self.onFirstSignal { first() } else { self.beginShutdown() }
            }
        }
    }

    /// What the first SIGINT or SIGTERM does instead of `beginShutdown()`
    /// (a `ServiceGroup`'s graceful shutdown, which then calls it). Set before
    /// the first signal can come; called on loop 0.
    var onFirstSignal: (@Sendable () -> Void)?

    /// A `ServiceGroup` whose one service runs `group`'s loops: its
    /// graceful shutdown is every loop's drain (`beginShutdown()`), and the
    /// first SIGINT or SIGTERM triggers it. The group gets no signals of its
    /// own. Neither holds the other: a strong link each way kept both alive
    /// after the run.
    func serviceGroup<S: Selector & SendableMetatype>(running group: LoopGroup<S>) -> ServiceGroup
    where S.Data == Int {
        // Unowned both ways (weak references would give each object a side
        // table, which LeakSanitizer reports if the object is still alive
        // at exit): the servers outlive the group's run, and a signal
        // reaches `onFirstSignal` only while the group runs.
        let service = LoopGroupService(group: group) { [unowned self] in self.beginShutdown() }
        let services = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: service)], gracefulShutdownSignals: [], cancellationSignals: [],
                logger: logger))
        onFirstSignal = { [unowned services] in
            Task { await services.triggerGracefulShutdown() }
        }
        return services
    }

    /// Sends every loop its server's shutdown (a drain), in the same pass.
    /// Safe from any thread.
    func beginShutdown() {
        onEachLoop { server, _ in server.shutdown() }
    }

    /// Starts loop `index`'s serving task if its server is an async one;
    /// on that loop's thread.
    func start(_ index: Int, on loop: any EventLoopContext) {
        guard let server = lock.withLock({ $0[index] }) as? AsyncUpperEchoServer else { return }
        serving.update { $0 += 1 }
        let handover = Handover(server)
        loop.handle.task { [serving] in
            // The task lets go of the server before it counts itself out:
            // once `waitForServingTasks()` returns, no task holds a server.
            await handover.take().run()
            serving.update { $0 -= 1 }
        }
    }

    /// Blocks until every serving task `start` began has ended, including
    /// the part of a task that a stopped loop hands to the global pool: the
    /// process then exits with nothing of its servers still in use. Every
    /// such task ends, since a stopped loop resumes every waiting call.
    func waitForServingTasks() {
        serving.wait(until: { $0 == 0 }, then: { _ in })
    }

    /// Where loop `index`'s server listens.
    func localAddress(of index: Int) -> Endpoint {
        lock.withLock { $0[index]!.localAddress }
    }

    /// Every server's counters added up, once the loops have stopped.
    func totals() -> ServerStats {
        ServerStats.total(lock.withLock { $0.compactMap { $0?.stats } })
    }

    // MARK: On the loops

    private func eachHandle(_ body: (EventLoopHandle) -> Void) {
        for case let handle? in handles.withLock({ $0 }) { body(handle) }
    }

    /// Runs `body` on every loop, with its server.
    private func onEachLoop(_ body: @escaping @Sendable (any EchoServer, Int) -> Void) {
        let all = handles.withLock { $0 }
        for (index, handle) in all.enumerated() {
            handle?.execute { [unowned self] _ in
                guard let server = self.lock.withLock({ $0[index] }) else { return }
                body(server, index)
            }
        }
    }

    private func onLoopZero(_ body: @escaping @Sendable (any EventLoopContext) -> Void) {
        handles.withLock { $0[0] }?.execute(body)
    }

    /// On loop 0: one more loop has finished its shutdown.
    private func loopDidFinish(loop: any EventLoopContext) {
        running -= 1
        guard running == 0 else { return }
        signals?.close()
        signals = nil
        loop.stop()
    }

    /// Starts a round of counters: each loop reads its own, and the last
    /// to answer prints them all.
    private func printStats() {
        let round = gathered.withLock { state -> Int in
            state = (state.round + 1, Array(repeating: nil, count: count))
            return state.round
        }
        onEachLoop { [unowned self] server, index in
            let mine = server.stats
            let complete = self.gathered.withLock { state -> [ServerStats]? in
                guard state.round == round else { return nil }
                state.stats[index] = mine
                let all = state.stats.compactMap { $0 }
                return all.count == self.count ? all : nil
            }
            guard let complete else { return }
            var lines = ""
            // One loop: its counters are the totals.
            if complete.count > 1 {
                for (loop, stats) in complete.enumerated() { lines += "loop=\(loop) \(stats.pairs)\n" }
            }
            lines += "\(ServerStats.total(complete))"
            print(lines)
            system_fflush_stdout()
        }
    }
}

/// A server handed to the task that serves it, which takes it out.
private final class Handover: @unchecked Sendable {
    // @unchecked: taken once, on the loop's thread.
    private var server: AsyncUpperEchoServer?

    init(_ server: AsyncUpperEchoServer) { self.server = server }

    /// The server, which the handover no longer holds.
    func take() -> AsyncUpperEchoServer {
        defer { server = nil }
        return server!
    }
}
