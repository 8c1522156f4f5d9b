import Foundation
import TestSupport
import Testing

@testable import Reactor

@Suite("EventLoop timers")
struct LoopTimerTests {
    @Test("a timer does not fire before the clock reaches its deadline, and fires on the next iteration after")
    func firesOnlyWhenDue() throws {
        let clock = ManualClock(start: 1_000)
        let loop = try makeLoop(clock: clock)
        var fired = 0
        loop.schedule(after: .seconds(5)) { fired += 1 }
        try loop.runOnce(timeout: .zero)
        #expect(fired == 0)
        clock.advance(by: .seconds(5) - .nanoseconds(1))
        try loop.runOnce(timeout: .zero)
        #expect(fired == 0)
        clock.advance(by: .nanoseconds(1))
        try loop.runOnce(timeout: .zero)
        #expect(fired == 1)
        try loop.runOnce(timeout: .zero)
        #expect(fired == 1, "a one-shot timer fires once")
        #expect(loop.timerCount == 0)
    }

    @Test("timers with the same deadline fire in the order they were scheduled")
    func sameDeadlineInScheduleOrder() throws {
        let clock = ManualClock()
        let loop = try makeLoop(clock: clock)
        var order: [Int] = []
        loop.schedule(after: .milliseconds(20)) { order.append(4) }
        for tag in 1...3 { loop.schedule(after: .milliseconds(10)) { order.append(tag) } }
        loop.schedule(at: clock.now() + 10_000_000) { order.append(5) }
        clock.advance(by: .milliseconds(30))
        try loop.runOnce(timeout: .zero)
        #expect(order == [1, 2, 3, 5, 4])
    }

    @Test("a repeating timer fires once per interval step")
    func repeatingFiresOncePerStep() throws {
        let clock = ManualClock()
        let loop = try makeLoop(clock: clock)
        var fired = 0
        let ticker = loop.scheduleRepeating(every: .milliseconds(100)) { fired += 1 }
        for step in 1...10 {
            clock.advance(by: .milliseconds(99))
            try loop.runOnce(timeout: .zero)
            #expect(fired == step - 1)
            clock.advance(by: .milliseconds(1))
            try loop.runOnce(timeout: .zero)
            #expect(fired == step)
        }
        #expect(loop.cancel(ticker))
        clock.advance(by: .seconds(1))
        try loop.runOnce(timeout: .zero)
        #expect(fired == 10)
    }

    @Test("a cancelled timer never fires")
    func cancelPreventsFiring() throws {
        let clock = ManualClock()
        let loop = try makeLoop(clock: clock)
        var fired: [Int] = []
        let first = loop.schedule(after: .seconds(1)) { fired.append(1) }
        loop.schedule(after: .seconds(1)) { fired.append(2) }
        #expect(loop.timerCount == 2)
        #expect(loop.cancel(first))
        #expect(!loop.cancel(first))
        clock.advance(by: .seconds(2))
        try loop.runOnce(timeout: .zero)
        #expect(fired == [2])
        #expect(loop.timerCount == 0)
    }

    @Test("a timer can cancel another one due in the same iteration")
    func cancelFromAnotherTimer() throws {
        let clock = ManualClock()
        let loop = try makeLoop(clock: clock)
        var fired: [Int] = []
        var second: TimerID?
        loop.schedule(after: .seconds(1)) {
            fired.append(1)
            if let second { loop.cancel(second) }
        }
        second = loop.schedule(after: .seconds(1)) { fired.append(2) }
        clock.advance(by: .seconds(1))
        try loop.runOnce(timeout: .zero)
        #expect(fired == [1])
    }

    @Test("work enqueued by a timer runs in the same iteration, after the timers")
    func enqueuedWorkRunsAfterTimers() throws {
        let clock = ManualClock()
        let loop = try makeLoop(clock: clock)
        var order: [String] = []
        loop.schedule(after: .seconds(1)) {
            order.append("timer 1")
            loop.enqueue { order.append("deferred") }
        }
        loop.schedule(after: .seconds(1)) { order.append("timer 2") }
        clock.advance(by: .seconds(1))
        try loop.runOnce(timeout: .zero)
        #expect(order == ["timer 1", "timer 2", "deferred"])
    }

    @Test("the wait is bounded by the nearest timer", .timeLimit(.minutes(1)))
    func waitBoundedByNearestTimer() throws {
        let loop = try makeLoop()
        var fired = false
        // From before the timer is scheduled: its 50 ms count from there, and
        // what follows (a thread started, under a sanitizer) takes time.
        let start = now()
        loop.schedule(after: .milliseconds(50)) { fired = true }
        loop.schedule(after: .seconds(600)) {}
        // Should the wait ignore the timer, this wakes the loop after 45 s instead of hanging the test.
        let handle = loop.handle
        let returned = DispatchSemaphore(value: 0)
        let watchdog = Background {
            if returned.wait(timeout: .now() + 45) == .timedOut { handle.execute { _ in } }
        }
        try loop.runOnce(timeout: nil)
        let elapsed = now() - start
        returned.signal()
        try watchdog.join()
        #expect(fired)
        #expect(elapsed >= .milliseconds(50))
        #expect(elapsed < .seconds(40), "the wait should end at the 50 ms timer, not at the watchdog or the 600 s one")
    }

    @Test("an explicit timeout shorter than the nearest timer bounds the wait")
    func explicitTimeoutBoundsTheWait() throws {
        let loop = try makeLoop()
        var fired = false
        loop.schedule(after: .seconds(120)) { fired = true }
        let start = now()
        try loop.runOnce(timeout: .milliseconds(20))
        let elapsed = now() - start
        #expect(!fired)
        #expect(elapsed >= .milliseconds(20))
        #expect(elapsed < .seconds(60), "the wait should end at the 20 ms timeout, not at the 120 s timer")
    }
}
