import TestSupport
import Testing

@testable import Reactor

/// Records which timers fired, in order.
final class FiringLog {
    var fired: [Int] = []
}

/// Pops every timer due at `now`, calling each, and returns the tags in order.
private func popAll(_ heap: inout TimerHeap, now: UInt64, log: FiringLog) -> [Int] {
    log.fired = []
    while let due = heap.popDue(now: now) { due() }
    return log.fired
}

@Suite("TimerHeap")
struct TimerHeapTests {
    @Test("timers fire by deadline, and equal deadlines in the order they were scheduled")
    func ordersByDeadlineThenSequence() {
        var generator = SplitMix(seed: 42)
        var heap = TimerHeap()
        let log = FiringLog()
        var model: [(deadline: UInt64, tag: Int)] = []
        for tag in 0..<500 {
            // Few distinct deadlines, so that many timers tie.
            let deadline = 100 + generator.next() % 8 * 10
            _ = heap.schedule(at: deadline) { log.fired.append(tag) }
            model.append((deadline, tag))
        }
        // Swift's sort is stable: ties keep the scheduling order.
        let expected = model.sorted { $0.deadline < $1.deadline }.map(\.tag)
        #expect(heap.count == 500)
        #expect(popAll(&heap, now: 99, log: log) == [])
        #expect(popAll(&heap, now: 1_000, log: log) == expected)
        #expect(heap.count == 0)
        #expect(heap.nextDeadline() == nil)
    }

    @Test("only the timers due at `now` fire")
    func popsOnlyDueTimers() {
        var heap = TimerHeap()
        let log = FiringLog()
        _ = heap.schedule(at: 30) { log.fired.append(3) }
        _ = heap.schedule(at: 10) { log.fired.append(1) }
        _ = heap.schedule(at: 20) { log.fired.append(2) }
        #expect(heap.nextDeadline() == 10)
        #expect(popAll(&heap, now: 20, log: log) == [1, 2])
        #expect(heap.nextDeadline() == 30)
        #expect(popAll(&heap, now: 29, log: log) == [])
        #expect(popAll(&heap, now: 30, log: log) == [3])
    }

    @Test("a cancelled timer never fires, and cancelling twice reports false")
    func cancelPreventsFiring() {
        var heap = TimerHeap()
        let log = FiringLog()
        let first = heap.schedule(at: 10) { log.fired.append(1) }
        _ = heap.schedule(at: 10) { log.fired.append(2) }
        let third = heap.schedule(at: 5) { log.fired.append(3) }
        let cancelledFirst = heap.cancel(first)
        let cancelledThird = heap.cancel(third)
        let cancelledAgain = heap.cancel(third)
        #expect(cancelledFirst)
        #expect(cancelledThird)
        #expect(!cancelledAgain)
        #expect(heap.count == 1)
        #expect(popAll(&heap, now: 100, log: log) == [2])
    }

    @Test("nextDeadline skips cancelled timers")
    func nextDeadlineSkipsCancelled() {
        var heap = TimerHeap()
        let early = heap.schedule(at: 5) {}
        let middle = heap.schedule(at: 7) {}
        _ = heap.schedule(at: 10) {}
        #expect(heap.nextDeadline() == 5)
        heap.cancel(early)
        heap.cancel(middle)
        #expect(heap.nextDeadline() == 10)
    }

    @Test("a repeating timer reschedules itself one interval on, until cancelled")
    func repeatingReschedules() {
        var heap = TimerHeap()
        let log = FiringLog()
        let ticker = heap.schedule(at: 10, interval: 10) { log.fired.append(1) }
        #expect(popAll(&heap, now: 10, log: log) == [1])
        #expect(heap.nextDeadline() == 20)
        #expect(popAll(&heap, now: 19, log: log) == [])
        #expect(popAll(&heap, now: 20, log: log) == [1])
        #expect(heap.nextDeadline() == 30)
        #expect(heap.count == 1)
        let cancelled = heap.cancel(ticker)
        #expect(cancelled)
        #expect(popAll(&heap, now: 1_000, log: log) == [])
        #expect(heap.nextDeadline() == nil)
    }

    @Test("a repeating timer late by many intervals fires once, not in a burst")
    func repeatingCatchesUpWithoutBurst() {
        var heap = TimerHeap()
        let log = FiringLog()
        _ = heap.schedule(at: 10, interval: 10) { log.fired.append(1) }
        #expect(popAll(&heap, now: 95, log: log) == [1])
        let next = heap.nextDeadline()
        #expect(next != nil && next! > 95)
    }

    @Test("a repeating timer keeps its place among timers due at the same instant")
    func repeatingTiesWithOneShot() {
        var heap = TimerHeap()
        let log = FiringLog()
        _ = heap.schedule(at: 10, interval: 10) { log.fired.append(1) }
        _ = heap.schedule(at: 20) { log.fired.append(2) }
        #expect(popAll(&heap, now: 10, log: log) == [1])
        // At 20 the one-shot was scheduled first; the repeat was re-queued at 10.
        #expect(popAll(&heap, now: 20, log: log) == [2, 1])
    }
}
