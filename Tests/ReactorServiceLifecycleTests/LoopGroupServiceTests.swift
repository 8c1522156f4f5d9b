import Logging
import Reactor
import ReactorServiceLifecycle
import Selectors
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

/// A count shared with the loops.
private final class Count: Sendable {
    private let atomic = Atomic<Int>(0)
    func add() { atomic.add(1, ordering: .relaxed) }
    var value: Int { atomic.load(ordering: .relaxed) }
}

@Suite("LoopGroupService: a LoopGroup in a ServiceGroup", .timeLimit(.minutes(1)))
struct LoopGroupServiceTests {
    private func makeGroup(_ started: Count) throws -> LoopGroup<EpollSelector<Int>> {
        try LoopGroup(loops: 2, selector: { try EpollSelector<Int>() }) { _, _ in started.add() }
    }

    @Test("the group's graceful shutdown calls the drain, which stops the loops; run() then returns")
    func gracefulShutdownDrains() async throws {
        let started = Count()
        let drained = Count()
        let group = try makeGroup(started)
        // The drain: each loop stops itself, from its own thread.
        let service = LoopGroupService(group: group) {
            drained.add()
            group.execute { _, loop in loop.stop() }
        }
        let services = ServiceGroup(services: [service], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await services.run() }
            await services.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(started.value == 2)
        #expect(drained.value == 1)
        // The loops have stopped: join returns at once.
        try group.join()
    }

    @Test("cancelling the service's task stops every loop at once")
    func cancellationStops() async throws {
        let group = try makeGroup(Count())
        let service = LoopGroupService(group: group) { Issue.record("no graceful shutdown was asked for") }
        let running = Task { try await service.run() }
        running.cancel()
        try await running.value
        try group.join()
    }

    @Test("a loop stopped by itself ends the service: the group sees it finish")
    func loopsThatStopEndTheService() async throws {
        let group = try makeGroup(Count())
        let service = LoopGroupService(group: group)
        group.stop()
        try await service.run()
    }
}
