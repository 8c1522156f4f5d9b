import Dispatch
import Foundation
import LinuxEpoll
import Selectors
import Syscalls
import SystemPackage
import TestSupport
import Testing

@testable import Reactor

/// Collects what a loop's diagnostics report, from the loop's thread.
final class Reports: Sendable {
    private let seen = Lock<[LoopDiagnostic]>([])
    var all: [LoopDiagnostic] { seen.withLock { $0 } }
    var report: @Sendable (LoopDiagnostic) -> Void { { diagnostic in self.seen.withLock { $0.append(diagnostic) } } }
}

/// A source that does nothing when told its descriptor is ready.
final class IgnoringSource: EventSource {
    var calls = 0
    override func handle(_ ready: Interest) { calls += 1 }
}

/// A source that sleeps in its handler, then drains its eventfd.
final class SleepingSource: EventSource {
    let eventFD: EventFD
    let sleep: Duration
    init(_ eventFD: EventFD, sleep: Duration) {
        self.eventFD = eventFD
        self.sleep = sleep
    }
    override func handle(_ ready: Interest) {
        Thread.sleep(forTimeInterval: Double(sleep.components.seconds) + Double(sleep.components.attoseconds) / 1e18)
        _ = eventFD.reset()
    }
}

@Suite("Loop metrics: what a loop did, read from any thread", .timeLimit(.minutes(1)))
struct LoopMetricsTests {
    @Test("a loop without metrics has none to read")
    func offByDefault() throws {
        let loop = try makeLoop()
        try loop.runOnce(timeout: .zero)
        #expect(loop.handle.metrics == nil)
    }

    @Test("iterations, events, timers and jobs are counted exactly")
    func countsAreExact() throws {
        let loop = try Loop(
            selector: try EpollSelector<Int>(), options: LoopOptions(metrics: true, diagnostics: .disabled))
        let ready = try EventFD()
        let source = CountingSource()
        let id = try loop.register(source, fileDescriptor: ready.fileDescriptor, interest: .read)
        defer { loop.unregister(id) }

        // Nothing yet: every count zero, the ratio 0.
        #expect(loop.handle.metrics == LoopMetrics())
        #expect(LoopMetrics().busyRatio == 0)

        // One event per iteration: the source reads nothing, so the eventfd
        // stays ready; three iterations give three events.
        ready.signal()
        for _ in 0..<3 { try loop.runOnce(timeout: .seconds(5)) }
        var metrics = try #require(loop.handle.metrics)
        #expect(metrics.iterations == 3)
        #expect(metrics.eventsDispatched == 3)
        #expect(source.calls == 3)
        loop.unregister(id)
        _ = ready.reset()

        // Four timers due now, two jobs, one of which enqueues a third.
        for _ in 0..<4 { loop.schedule(after: .zero) {} }
        loop.enqueue {}
        loop.enqueue { loop.enqueue {} }
        #expect(try drive(loop) { loop.handle.metrics!.timersFired == 4 && loop.handle.metrics!.jobsRun == 3 })

        // Two bodies sent from another thread: each counts as a job, and
        // the wake-up that brought them as an event.
        let before = try #require(loop.handle.metrics)
        let handle = loop.handle
        try Background {
            handle.execute { _ in }; handle.execute { _ in }
        }.join()
        #expect(try drive(loop) { loop.handle.metrics!.jobsRun == before.jobsRun + 2 })
        metrics = try #require(loop.handle.metrics)
        #expect(metrics.eventsDispatched >= before.eventsDispatched + 1)
        #expect(metrics.timersFired == 4)
    }

    @Test("time splits into waiting and working; the longest handler is at least as long as it slept")
    func timeAndLongestHandler() throws {
        let loop = try Loop(
            selector: try EpollSelector<Int>(), options: LoopOptions(metrics: true, diagnostics: .disabled))
        // A wait that times out: 20 ms of waiting at least, no event.
        try loop.runOnce(timeout: .milliseconds(20))
        var metrics = try #require(loop.handle.metrics)
        #expect(metrics.waitingNanoseconds >= 20_000_000)
        #expect(metrics.eventsDispatched == 0)

        // A handler that sleeps 30 ms: that much work at least, and the
        // longest handler call at least as long.
        let ready = try EventFD()
        let id = try loop.register(
            SleepingSource(ready, sleep: .milliseconds(30)), fileDescriptor: ready.fileDescriptor, interest: .read)
        defer { loop.unregister(id) }
        ready.signal()
        try loop.runOnce(timeout: .seconds(5))
        metrics = try #require(loop.handle.metrics)
        #expect(metrics.longestHandlerNanoseconds >= 30_000_000)
        #expect(metrics.busyNanoseconds >= 30_000_000)
        #expect(metrics.busyRatio > 0 && metrics.busyRatio < 1)
    }

    @Test("another thread reads the counts while the loop runs")
    func readFromAnotherThread() throws {
        let loopThread = LoopThread(
            try Loop(selector: try EpollSelector<Int>(), options: LoopOptions(metrics: true, diagnostics: .disabled)))
        loopThread.start()
        defer { try? loopThread.stop() }
        let handle = loopThread.loop.handle
        for _ in 0..<100 { handle.execute { _ in } }
        #expect(waitUntil { (handle.metrics?.jobsRun ?? 0) >= 100 }, "the 100 jobs were never counted")
        let iterations = try #require(handle.metrics).iterations
        #expect(iterations >= 1)
    }
}
