import CEpollShim
import Foundation
import Glibc
import Syscalls
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
            try runner.join(timeout: .seconds(5))
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
            try drive(loop, timeout: .seconds(5)) { !received.isEmpty },
            "the pending SIGUSR2 was not delivered")
        try system_kill(system_getpid(), SIGUSR2).get()
        #expect(try drive(loop, timeout: .seconds(5)) { received.count == 2 })
        #expect(received == [SIGUSR2, SIGUSR2])
    }
}

/// Whether `signal`'s action is the default one. Queried with libc's
/// `sigaction` directly: the package has no wrapper that only reads.
private func isDefaultAction(_ signal: CInt) -> Bool {
    var action = sigaction()
    guard sigaction(signal, nil, &action) == 0 else { return false }
    return action.__sigaction_handler.sa_handler == nil
}
