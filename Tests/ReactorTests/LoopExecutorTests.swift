import Dispatch
import Foundation
import Selectors
import Synchronization
import Syscalls
import TestSupport
import Testing

@testable import Reactor

/// An actor pinned to a loop: its code runs on the loop's thread.
actor LoopCounter {
    let executor: LoopSerialExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private(set) var count = 0
    init(_ handle: EventLoopHandle) { executor = handle.serialExecutor }

    /// Adds one; returns whether it ran on the loop's thread.
    func increment() -> Bool {
        count += 1
        return executor.jobs.isOnLoopThread
    }
}

/// The loop's thread token, read on the loop.
private func loopToken(_ loopThread: LoopThread) throws -> UInt {
    try loopThread.onLoop { _ in UInt(bitPattern: system_current_thread_token()) }
}

private func currentToken() -> UInt { UInt(bitPattern: system_current_thread_token()) }

/// A count shared by tasks and threads.
private final class Count: Sendable {
    private let atomic = Atomic<Int>(0)
    func add() { atomic.add(1, ordering: .relaxed) }
    var value: Int { atomic.load(ordering: .relaxed) }
}

@Suite("The loop as Swift Concurrency's executor", .timeLimit(.minutes(1)))
struct LoopExecutorTests {
    @Test("a task that prefers the loop's task executor runs on the loop's thread, before and after it suspends")
    func taskRunsOnTheLoop() async throws {
        let loopThread = LoopThread(try makeLoop())
        loopThread.start()
        defer { try? loopThread.stop() }
        let token = try loopToken(loopThread)
        let handle = loopThread.loop.handle
        let tokens = await Task(executorPreference: handle.taskExecutor) { () -> [UInt] in
            var seen = [currentToken()]
            // Parked, then resumed by a timer on the loop.
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                handle.execute { loop in loop.schedule(after: .milliseconds(1)) { continuation.resume() } }
            }
            seen.append(currentToken())
            await Task.yield()
            seen.append(currentToken())
            return seen
        }.value
        #expect(tokens == [token, token, token])
        #expect(!handle.taskExecutor.isCurrent, "the test's own thread passed for the loop's")
    }

    @Test("1,000 tasks started from four threads all run, each once, on the loop's thread")
    func remoteEnqueueFromManyThreads() async throws {
        let loopThread = LoopThread(try makeLoop())
        loopThread.start()
        defer { try? loopThread.stop() }
        let token = try loopToken(loopThread)
        let handle = loopThread.loop.handle
        let ran = Count()
        let elsewhere = Count()
        let senders = (0..<4).map { _ in
            Background { () -> [Task<Void, Never>] in
                (0..<250).map { _ in
                    Task(executorPreference: handle.taskExecutor) {
                        if currentToken() != token { elsewhere.add() }
                        ran.add()
                    }
                }
            }
        }
        var tasks: [Task<Void, Never>] = []
        for sender in senders { tasks += try sender.join() }
        for task in tasks { await task.value }
        let (ranCount, elsewhereCount) = (ran.value, elsewhere.value)
        #expect(ranCount == 1_000)
        #expect(elsewhereCount == 0, "some tasks ran off the loop")
    }

    /// A `Task.yield()` on a task executor is two jobs, one after the other
    /// (the yield, then the runtime's switch back to the task's executor),
    /// so 200 yields are 400 jobs, each queued by the one before.
    @Test("jobs queued by jobs make the next wait non-blocking: 200 yields take at most 402 iterations")
    func jobsFromJobsDoNotWait() throws {
        let loop = try Loop(
            selector: try EpollSelector<Int>(), options: LoopOptions(metrics: true, diagnostics: .disabled))
        let done = Count()
        let handle = loop.handle
        // Started before the loop runs: the first job arrives through the
        // handle's queue and wakes the first wait.
        handle.task {
            for _ in 0..<200 { await Task.yield() }
            done.add()
        }
        var iterations = 0
        // Each wait may last a minute: a blocking wait with a job queued
        // would show as this test running out of time.
        while done.value == 0 && iterations < 1_000 {
            try loop.runOnce(timeout: .seconds(60))
            iterations += 1
        }
        let finished = done.value
        #expect(finished == 1)
        #expect(iterations <= 402, "\(iterations) iterations for 200 yields")
        #expect((loop.handle.metrics?.jobsRun ?? 0) >= 401)
    }

    @Test("an actor pinned to the loop runs on the loop's thread, and assumeIsolated holds there")
    func loopPinnedActor() async throws {
        let loopThread = LoopThread(try makeLoop())
        loopThread.start()
        defer { try? loopThread.stop() }
        let handle = loopThread.loop.handle
        let counter = LoopCounter(handle)
        // From a task on the loop: no hop.
        let onLoop = try await handle.task {
            var all = true
            for _ in 0..<100 { all = await counter.increment() && all }
            return all
        }.value
        #expect(onLoop)
        // From a task with no preference: each call hops to the loop.
        var fromPool = true
        for _ in 0..<10 { fromPool = await counter.increment() && fromPool }
        #expect(fromPool)
        #expect(await counter.count == 110)
        // A handler on the loop may assume the actor's isolation.
        let count = try loopThread.onLoop { _ in counter.assumeIsolated { $0.count } }
        #expect(count == 110)
    }

    @Test("jobs queued when the loop stops still run; jobs after it stopped run on the global pool")
    func stoppedLoopLosesNoJob() async throws {
        let loop = try makeLoop()
        let handle = loop.handle
        let loopThread = LoopThread(loop)
        loopThread.start()
        // A task that yields 50 times, then a stop while it runs: run()
        // finishes its jobs before it returns.
        let yielded = Count()
        let busy = handle.task {
            for _ in 0..<50 {
                yielded.add()
                await Task.yield()
            }
        }
        handle.stop()
        try loopThread.join()
        // Not a wait on the loop, which has stopped: the task ended on it,
        // or went on on the global pool.
        try await busy.value
        let yields = yielded.value
        #expect(yields == 50)
        // Started after the stop: runs on the global pool, not never.
        let late = try await handle.task { handle.taskExecutor.isCurrent }.value
        #expect(!late)
    }
}
