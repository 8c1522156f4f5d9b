import Selectors
import CEpollShim
import Foundation
import Glibc
import Syscalls
import TestSupport
import Testing

@testable import Reactor

/// SIGUSR2 only: LinuxEpollTests, in the same test process, uses SIGUSR1.
@Suite("SignalSource", .serialized, .timeLimit(.minutes(1)))
struct SignalTests {
    @Test("SIGUSR2 raised on the process reaches the handler on the loop's thread, which stops the loop")
    func signalStopsLoopGracefully() throws {
        let loop = try makeLoop()
        let baseline = loop.sourceCount
        var received: [CInt] = []
        var handlerThread: Thread?
        let signals = try SignalSource(loop: loop, signals: [SIGUSR2]) { signal in
            received.append(signal)
            handlerThread = Thread.current
            loop.stop()
        }
        #expect(loop.sourceCount == baseline + 1)
        #expect(!isDefaultAction(SIGUSR2), "no handler was installed for SIGUSR2")
        let runner = LoopThread(loop)
        runner.start()
        // Only now: the handler is installed, so the signal cannot kill the process.
        try system_kill(system_getpid(), SIGUSR2).get()
        do {
            try runner.join()
        } catch {
            Issue.record("run() did not return after SIGUSR2")
            try runner.stop()
        }
        #expect(received == [SIGUSR2])
        #expect(handlerThread === runner.thread)
        signals.close()
        signals.close()  // idempotent
        #expect(loop.sourceCount == baseline)
        #expect(isDefaultAction(SIGUSR2), "close() did not restore the default action")
    }

    @Test("signals that arrive before the loop runs are delivered when it does, once per delivery")
    func signalsQueuedBeforeRun() throws {
        let loop = try makeLoop()
        var received: [CInt] = []
        let signals = try SignalSource(loop: loop, signals: [SIGUSR2]) { received.append($0) }
        defer { signals.close() }
        try system_kill(system_getpid(), SIGUSR2).get()
        #expect(
            try drive(loop) { !received.isEmpty },
            "the pending SIGUSR2 was not delivered")
        try system_kill(system_getpid(), SIGUSR2).get()
        #expect(try drive(loop) { received.count == 2 })
        #expect(received == [SIGUSR2, SIGUSR2])
    }

    // SIGWINCH besides SIGUSR2: its default action is to be ignored, so a
    // stray one cannot end the test process.
    @Test("two sources share out the signals; one that took a signal over keeps it when the first closes")
    func sourcesShareOutSignals() throws {
        let loop = try makeLoop()
        var first: [CInt] = []
        var second: [CInt] = []
        let a = try SignalSource(loop: loop, signals: [SIGUSR2, SIGWINCH]) { first.append($0) }
        let b = try SignalSource(loop: loop, signals: [SIGWINCH]) { second.append($0) }
        defer {
            a.close()
            b.close()
        }
        try system_kill(system_getpid(), SIGUSR2).get()
        try system_kill(system_getpid(), SIGWINCH).get()
        #expect(try drive(loop) { first.count + second.count == 2 })
        #expect(first == [SIGUSR2], "SIGUSR2 goes to the first source only")
        #expect(second == [SIGWINCH], "SIGWINCH goes to the source that took it over")

        a.close()
        #expect(isDefaultAction(SIGUSR2), "closing the first did not restore SIGUSR2")
        #expect(!isDefaultAction(SIGWINCH), "closing the first took SIGWINCH from the second")
        try system_kill(system_getpid(), SIGWINCH).get()
        #expect(try drive(loop) { second.count == 2 })
        #expect(first == [SIGUSR2])

        b.close()
        #expect(isDefaultAction(SIGWINCH))
    }

    @Test("a source released with its loop, never closed, restores the default action")
    func sourceReleasedWithItsLoop() throws {
        do {
            let loop = try makeLoop()
            _ = try SignalSource(loop: loop, signals: [SIGWINCH]) { _ in }
            #expect(!isDefaultAction(SIGWINCH))
        }
        #expect(isDefaultAction(SIGWINCH), "the released source left its handler installed")
    }

    @Test("a source that cannot install a handler (SIGKILL) throws and leaves nothing registered")
    func failedSourceLeavesNothing() throws {
        let loop = try makeLoop()
        let baseline = loop.sourceCount
        #expect(throws: SelectorError.system(.invalidArgument)) {
            _ = try SignalSource(loop: loop, signals: [SIGWINCH, SIGKILL]) { _ in }
        }
        #expect(loop.sourceCount == baseline)
        #expect(isDefaultAction(SIGWINCH), "the handler installed before the failure was left behind")
    }
}

/// Whether `signal`'s action is the default one. Queried with libc's
/// `sigaction` directly: the package has no wrapper that only reads.
private func isDefaultAction(_ signal: CInt) -> Bool {
    var action = sigaction()
    guard sigaction(signal, nil, &action) == 0 else { return false }
    return action.__sigaction_handler.sa_handler == nil
}
