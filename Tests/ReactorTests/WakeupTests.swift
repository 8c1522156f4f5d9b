import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Reactor

@Suite("EventLoopHandle: work and stop from other threads", .timeLimit(.minutes(1)))
struct WakeupTests {
    @Test("execute from another thread wakes a loop blocked without timers and runs on the loop's thread")
    func executeRunsOnLoopThread() throws {
        let loopThread = LoopThread(try makeLoop())
        loopThread.start()
        defer { try? loopThread.stop() }
        let loopThreadObject = Unchecked(loopThread.thread)
        // The loop must be blocked in its wait, which no timer bounds, when the work comes.
        try loopThread.waitUntilBlocked()
        let ran = DispatchSemaphore(value: 0)
        let onLoopThread = Atomic<Bool>(false)
        let sender = Background {
            loopThread.loop.handle.execute { _ in
                onLoopThread.store(Thread.current === loopThreadObject.value, ordering: .relaxed)
                ran.signal()
            }
        }
        try sender.join()
        #expect(ran.wait(timeout: .now() + 30) == .success, "the closure did not run: the loop was not woken")
        let ranOnLoopThread = onLoopThread.load(ordering: .relaxed)
        #expect(ranOnLoopThread, "the closure ran on another thread than the loop's")
        #expect(!Thread.current.isEqual(loopThreadObject.value))
    }

    @Test("work from many threads all runs, each item once")
    func workFromManyThreadsRuns() throws {
        let loopThread = LoopThread(try makeLoop())
        loopThread.start()
        defer { try? loopThread.stop() }
        let count = Atomic<Int>(0)
        let senders = (0..<4).map { _ in
            Background {
                for _ in 0..<250 { loopThread.loop.handle.execute { _ in count.add(1, ordering: .relaxed) } }
            }
        }
        for sender in senders { try sender.join() }
        #expect(waitUntil { count.load(ordering: .relaxed) == 1_000 })
        // Work runs in the order it came: once this runs, so has every item
        // sent before it, and an item run twice would show in the count.
        let total = try loopThread.onLoop { _ in count.load(ordering: .relaxed) }
        #expect(total == 1_000)
    }

    @Test("stop from another thread makes run() return")
    func stopFromAnotherThread() throws {
        let loopThread = LoopThread(try makeLoop())
        loopThread.start()
        // The stop must wake a loop blocked in its wait (a stop before run()
        // starts is StopRequestTests' case).
        try loopThread.waitUntilBlocked()
        let handle = loopThread.loop.handle
        try Background { handle.stop() }.join()
        // join throws if run() did not return in time.
        try loopThread.join()
    }

    @Test("a loop stopped from another thread can run again")
    func runAgainAfterStop() throws {
        let loop = try makeLoop()
        let first = LoopThread(loop)
        first.start()
        try first.stop()
        let ran = Atomic<Bool>(false)
        loop.handle.execute { _ in ran.store(true, ordering: .relaxed) }
        let second = LoopThread(loop)
        second.start()
        #expect(waitUntil { ran.load(ordering: .relaxed) })
        try second.stop()
    }

    @Test("stop() inside a handler makes run() return after the current iteration")
    func stopFromInsideTheLoop() throws {
        let loop = try makeLoop()
        var ticks = 0
        // unowned: the loop keeps its timers, so a timer that kept the loop
        // would keep both alive forever.
        loop.scheduleRepeating(every: .milliseconds(1)) { [unowned loop] in
            ticks += 1
            if ticks == 3 { loop.stop() }
        }
        let runner = Unchecked(loop)
        try Background { try runner.value.run() }.join()
        #expect(ticks == 3)
    }

    /// Regression: the loop's deinit closed the handle's eventfd while other
    /// threads could still hold the handle; their next `execute` or `stop`
    /// wrote eight bytes into whatever descriptor had reused the number.
    @Test("a handle that outlives its loop still signals its own eventfd")
    func handleOutlivesLoop() throws {
        var loop: Loop? = try makeLoop()
        let handle = loop!.handle
        loop = nil
        handle.execute { _ in Issue.record("work ran after its loop was gone") }
        handle.stop()
        #expect(handle.eventFD.reset() == 2, "the signals did not reach the handle's own eventfd")
    }
}

@Suite("EventLoop.run and stop requests", .timeLimit(.minutes(1)))
struct StopRequestTests {
    /// Regression: `run()` cleared pending stop requests when it started, so
    /// a `handle.stop()` made between starting the loop's thread and its first
    /// iteration was lost, and the loop ran on forever.
    @Test("a stop requested before run() starts is not lost")
    func stopBeforeRunIsKept() throws {
        let loop = try makeLoop()
        loop.handle.stop()
        let runner = LoopThread(loop)
        runner.start()
        do {
            try runner.join()
        } catch {
            Issue.record("run() ignored the stop requested before it started")
            loop.handle.stop()
            try runner.join()
        }
    }

    @Test("a stop consumed by one run() does not stop the next one")
    func stopIsConsumed() throws {
        let loop = try makeLoop()
        let first = LoopThread(loop)
        first.start()
        try first.stop()
        var ran = false
        loop.schedule(after: .milliseconds(30)) {
            ran = true
            loop.stop()
        }
        let second = LoopThread(loop)
        second.start()
        try second.join()
        #expect(ran, "the second run() returned before its timer fired")
    }
}
