// The package's EINTR policy, CPython's since PEP 475: calls are retried,
// waits are retried with the time that remains until a monotonic deadline,
// and close is never retried. The bodies given to the retry helpers below
// fail with a real EINTR in errno, exactly as an interrupted syscall does.
import CEpollShim
import Glibc
import SystemPackage
import Syscalls
import Testing

/// Makes the body of a retried call fail the way an interrupted syscall does.
private func failInterrupted() -> CInt {
    cepoll_set_errno(EINTR)
    return -1
}

@Suite("EINTR retry")
struct RetryTests {
    @Test("valueOrErrno retries a call interrupted with EINTR and returns its result")
    func valueRetried() {
        var calls = 0
        let result = valueOrErrno(.read) { () -> CInt in
            calls += 1
            return calls < 3 ? failInterrupted() : 42
        }
        #expect(result == .success(42))
        #expect(calls == 3)
    }

    @Test("valueOrErrno returns any other errno at once")
    func valueOtherErrno() {
        var calls = 0
        let result = valueOrErrno(.read) { () -> CInt in
            calls += 1
            cepoll_set_errno(EAGAIN)
            return -1
        }
        #expect(result == .failure(.resourceTemporarilyUnavailable))
        #expect(calls == 1)
    }

    @Test("valueOrErrno with retryOnInterrupt false returns EINTR")
    func valueNotRetried() {
        var calls = 0
        let result = valueOrErrno(.connect, retryOnInterrupt: false) { () -> CInt in
            calls += 1
            return failInterrupted()
        }
        #expect(result == .failure(.interrupted))
        #expect(calls == 1)
    }

    @Test("a wait interrupted after its deadline passed returns 0 (nothing ready) without waiting again")
    func waitPastDeadlineReturnsZero() {
        var timeouts: [CInt] = []
        let result = waitRetryingWithDeadline(.poll, timeoutMilliseconds: 5) { timeout in
            timeouts.append(timeout)
            usleep(20_000)  // the "syscall" outlives its 5 ms deadline, then reports EINTR
            return failInterrupted()
        }
        #expect(result == .success(0))
        #expect(timeouts == [5])
    }

    @Test("a wait interrupted before its deadline is retried with the time that remains")
    func waitRetriedWithRemainingTime() {
        var timeouts: [CInt] = []
        let result = waitRetryingWithDeadline(.poll, timeoutMilliseconds: 10_000) { timeout in
            timeouts.append(timeout)
            if timeouts.count == 1 {
                usleep(20_000)  // 20 ms of the 10 s pass before the signal arrives
                return failInterrupted()
            }
            return 3
        }
        #expect(result == .success(3))
        #expect(timeouts.count == 2)
        #expect(timeouts.first == 10_000)
        if let second = timeouts.last {
            #expect(second > 0 && second <= 9_980, "second attempt waited \(second) ms")
        }
    }

    @Test(
        "an interrupted wait forever stays forever, and a zero wait polls again",
        arguments: [CInt(-1), 0]
    )
    func waitForeverAndZeroKeepTheirTimeout(timeout: CInt) {
        var timeouts: [CInt] = []
        let result = waitRetryingWithDeadline(.epollWait, timeoutMilliseconds: timeout) { given in
            timeouts.append(given)
            return timeouts.count < 3 ? failInterrupted() : 1
        }
        #expect(result == .success(1))
        #expect(timeouts == [timeout, timeout, timeout])
    }

    @Test("a wait's other errors are returned at once")
    func waitOtherErrno() {
        var calls = 0
        let result = waitRetryingWithDeadline(.poll, timeoutMilliseconds: 100) { _ in
            calls += 1
            cepoll_set_errno(EINVAL)
            return -1
        }
        #expect(result == .failure(.invalidArgument))
        #expect(calls == 1)
    }

    @Test(
        "N forced EINTRs on system_poll make N+1 calls and still wait the full timeout",
        arguments: [1, 5]
    )
    func forcedInterruptsOnPoll(times: Int) {
        let mock = SyscallMock()
        mock.force(.interrupted, on: .poll, times: times)
        let clock = ContinuousClock()
        let start = clock.now
        let result = mock.install { system_poll(nil, 0, timeoutMilliseconds: 5) }
        #expect(clock.now - start >= .milliseconds(5))
        #expect(result == .success(0))
        #expect(mock.calls(.poll) == times + 1)
    }

    @Test("close is not retried on EINTR: one call, the error is returned")
    func closeNotRetried() throws {
        let (readEnd, writeEnd) = try system_pipe2(O_CLOEXEC).get()
        defer { _ = system_close(writeEnd) }
        let mock = SyscallMock()
        mock.force(.interrupted, on: .close, times: 3)
        let result = mock.install { system_close(readEnd) }
        #expect(failure(result) == .interrupted)
        #expect(mock.calls(.close) == 1)
        // The forced EINTR never reached the kernel, so the descriptor is still open: close it for real.
        #expect(failure(system_fcntl(readEnd, F_GETFD)) == nil)
        #expect(failure(system_close(readEnd)) == nil)
    }

    @Test("other calls retry forced EINTRs and then really run")
    func forcedInterruptsThenRealCall() throws {
        let (readEnd, writeEnd) = try system_pipe2(O_CLOEXEC | O_NONBLOCK).get()
        defer { _ = system_close(readEnd); _ = system_close(writeEnd) }
        let mock = SyscallMock()
        mock.force(.interrupted, on: .write, times: 2)
        mock.force(.interrupted, on: .read, times: 4)
        let written = mock.install { [UInt8]("abc".utf8).withUnsafeBytes { system_write(writeEnd, $0) } }
        var bytes = [UInt8](repeating: 0, count: 8)
        let read = mock.install { bytes.withUnsafeMutableBytes { system_read(readEnd, $0) } }
        #expect(written == .success(3))
        #expect(read == .success(3))
        #expect(bytes.prefix(3) == [UInt8]("abc".utf8)[...])
        #expect(mock.calls(.write) == 3)
        #expect(mock.calls(.read) == 5)
    }
}
