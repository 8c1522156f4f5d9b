// As in CPython: EINTR is retried (PEP 475), and a wait resumes
// with the time that remains. Forced EINTRs go through SyscallMock; one test
// interrupts a real epoll_wait with a real signal.
import CEpollShim
import Dispatch
import Foundation
import Glibc
import LinuxEpoll
import Synchronization
import Syscalls
import Testing

/// How many times the SIGUSR1 handler ran.
let sigusr1Count = Atomic<Int>(0)

/// Installs the SIGUSR1 handler once per process, without `SA_RESTART`, so
/// that a signal makes a blocked `epoll_wait` fail with EINTR. Only
/// `realSignalResumesWait` sends SIGUSR1, and only to its own thread.
let installSIGUSR1Handler: Void = {
    _ = sigusr1Count.load(ordering: .relaxed)  // initialize the global before the handler can touch it
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in sigusr1Count.add(1, ordering: .relaxed) }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0
    precondition(sigaction(SIGUSR1, &action, nil) == 0, "sigaction failed")
}()

@Suite("EINTR")
struct InterruptTests {
    @Test("N forced EINTRs on epoll_ctl make N+1 calls and the registration takes effect", arguments: [1, 3, 10])
    func controlRetried(times: Int) throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let ready = try makeEventFD(initial: 1)
        defer { closeAll(ready) }
        let mock = SyscallMock()
        mock.force(.interrupted, on: .epollCtl, times: times)
        try mock.install { () throws(EpollError) in try epoll.register(ready, events: .in) }
        #expect(mock.calls(.epollCtl) == times + 1)
        #expect(byDescriptor(try epoll.poll(timeout: .zero)) == [ready: .in])
        #expect(throws: EpollError.alreadyRegistered) { try epoll.register(ready, events: .in) }
    }

    @Test("forced EINTRs on modify and unregister are retried too")
    func modifyUnregisterRetried() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let ready = try makeEventFD(initial: 1)
        defer { closeAll(ready) }
        try epoll.register(ready, events: .out)
        let mock = SyscallMock()
        mock.force(.interrupted, on: .epollCtl, times: 2)
        try mock.install { () throws(EpollError) in try epoll.modify(ready, events: .in) }
        #expect(byDescriptor(try epoll.poll(timeout: .zero)) == [ready: .in])
        mock.force(.interrupted, on: .epollCtl, times: 2)
        try mock.install { () throws(EpollError) in try epoll.unregister(ready) }
        #expect(mock.calls(.epollCtl) == 6)
        #expect(try epoll.poll(timeout: .zero).isEmpty)
    }

    @Test(
        "N forced EINTRs on epoll_wait make N+1 calls and return the ready event, whatever the timeout",
        arguments: [nil, Duration.zero, .milliseconds(500)]
    )
    func waitRetried(timeout: Duration?) throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let ready = try makeEventFD(initial: 1)
        defer { closeAll(ready) }
        try epoll.register(ready, events: .in)
        let mock = SyscallMock()
        mock.force(.interrupted, on: .epollWait, times: 3)
        let events = try mock.install { () throws(EpollError) in try epoll.poll(timeout: timeout) }
        #expect(mock.calls(.epollWait) == 4)
        #expect(byDescriptor(events) == [ready: .in])

        let buffer = Epoll.EventBuffer(capacity: 2)
        mock.force(.interrupted, on: .epollWait, times: 2)
        let count = try mock.install { () throws(EpollError) in try epoll.poll(into: buffer, timeout: timeout) }
        #expect(mock.calls(.epollWait) == 7)
        #expect(count == 1)
    }

    @Test("a real signal during a 300 ms wait is retried with the time that remains")
    func realSignalResumesWait() throws {
        _ = installSIGUSR1Handler
        // The signal goes to this thread only; make sure it is not blocked here, as it is by default.
        var unblock = sigset_t()
        var previous = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGUSR1)
        #expect(pthread_sigmask(SIG_UNBLOCK, &unblock, &previous) == 0)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }

        let epoll = try Epoll()
        defer { epoll.close() }
        let idle = try makeEventFD()
        defer { closeAll(idle) }
        try epoll.register(idle, events: .in)

        let target = pthread_self()
        let targetThread = try #require(currentThreadID(), "this thread's id is not in /proc/thread-self")
        let clock = ContinuousClock()
        // The signal must arrive while epoll_wait blocks: the sender waits
        // until it sees this thread asleep in it. Should the sender get there
        // only after the wait is over (its thread not scheduled for 300 ms),
        // the attempt proves nothing and is made again.
        let giveUp = clock.now + .seconds(60)
        var attempts = 0
        while true {
            attempts += 1
            let polling = Lock(true)
            let signalled = Lock(false)
            let senderDone = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                while polling.withLock({ $0 }) {
                    if isBlockedInEpollWait(targetThread) {
                        pthread_kill(target, SIGUSR1)
                        signalled.withLock { $0 = true }
                        break
                    }
                    usleep(500)
                }
                senderDone.signal()
            }
            let before = sigusr1Count.load(ordering: .relaxed)
            let mock = SyscallMock()
            let (events, elapsed, handledDuringPoll) = try mock.install {
                () throws(EpollError) -> ([Epoll.Event], Duration, Bool) in
                let atStart = sigusr1Count.load(ordering: .relaxed)
                let start = clock.now
                let events = try epoll.poll(timeout: .milliseconds(300))
                // The handler runs on this thread: a count that moved during the poll means it ran inside it.
                return (events, clock.now - start, sigusr1Count.load(ordering: .relaxed) > atStart)
            }
            polling.withLock { $0 = false }
            senderDone.wait()
            // A signal that was sent is handled before the next attempt, so
            // that it never lands in another attempt or another test.
            let expected = before + (signalled.withLock { $0 } ? 1 : 0)
            let deadline = clock.now + .seconds(30)
            while sigusr1Count.load(ordering: .relaxed) < expected && clock.now < deadline { usleep(1000) }
            #expect(sigusr1Count.load(ordering: .relaxed) >= expected, "the SIGUSR1 sent was not handled within 30 s")

            if handledDuringPoll {
                #expect(events.isEmpty)
                #expect(elapsed >= .milliseconds(300), "the interrupted wait returned after \(elapsed)")
                #expect(mock.calls(.epollWait) >= 2, "the signal did not interrupt epoll_wait, or it was not retried")
                return
            }
            if clock.now >= giveUp {
                Issue.record("in \(attempts) attempts over 60 s, SIGUSR1 never arrived while epoll_wait was blocked")
                return
            }
        }
    }
}
