// The package's one error policy for libc calls: -1 becomes a typed `Errno`,
// EINTR is retried (waits with the time that remains), and the debug-only
// `SyscallMock` can force a fault. Every wrapper of the module goes through it.
import CEpollShim
import SystemPackage

/// Makes one libc call through the package's single error policy: a result of
/// -1 becomes the thread's `errno`, and `EINTR` is retried (PEP 475) unless
/// `retryOnInterrupt` is false, which only `close` uses: after an interrupted
/// `close` the descriptor is already gone on Linux, and retrying could close a
/// descriptor that another thread has just been given.
@inlinable @inline(__always)
package func valueOrErrno<T: FixedWidthInteger>(
    _ call: Syscall,
    retryOnInterrupt: Bool = true,
    _ body: () -> T
) -> Result<T, Errno> {
    while true {
        #if DEBUG
            if let mock = SyscallMock.current, let forced = mock.intercept(call) {
                if forced == .interrupted && retryOnInterrupt { continue }
                return .failure(forced)
            }
        #endif
        let result = body()
        if result != -1 { return .success(result) }
        let errno = Errno(rawValue: cepoll_errno())
        if errno == .interrupted && retryOnInterrupt { continue }
        return .failure(errno)
    }
}

/// Makes a waiting call (`epoll_wait`, `poll`, `select`) whose timeout is in
/// milliseconds, retrying on `EINTR` with the time that remains until the
/// deadline fixed at the first attempt, as CPython does. A wait whose deadline
/// has passed when it is interrupted returns 0 (nothing ready).
///
/// - Parameters:
///   - timeoutMilliseconds: -1 waits forever, 0 does not wait.
///   - body: makes the call with the timeout it is given.
@inline(__always)
package func waitRetryingWithDeadline(
    _ call: Syscall,
    timeoutMilliseconds: CInt,
    _ body: (CInt) -> CInt
) -> Result<CInt, Errno> {
    let deadline =
        timeoutMilliseconds > 0 ? system_clock_gettime_monotonic() + Int64(timeoutMilliseconds) * 1_000_000 : 0
    var timeout = timeoutMilliseconds
    while true {
        switch valueOrErrno(call, retryOnInterrupt: false, { body(timeout) }) {
        case .success(let count):
            return .success(count)
        case .failure(let errno) where errno == .interrupted:
            guard timeoutMilliseconds > 0 else { continue }  // forever stays forever; zero polls again
            let remaining = deadline - system_clock_gettime_monotonic()
            if remaining <= 0 { return .success(0) }
            timeout = CInt((remaining + 999_999) / 1_000_000)
        case .failure(let errno):
            return .failure(errno)
        }
    }
}
