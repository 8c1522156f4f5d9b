// timerfd: a monotonic timer as a descriptor, created and armed for one
// absolute deadline. Every call goes through the policy of Retry.swift (EINTR
// retried, errno typed); the expirations are read with `system_read`.
import CEpollShim
import SystemPackage

/// Creates a non-blocking, close-on-exec timer on `CLOCK_MONOTONIC` that
/// becomes readable when it expires, so that an epoll loop can wake at a
/// precise instant rather than at the next whole millisecond of its
/// `epoll_wait` timeout. The corresponding C function is `timerfd_create`.
package func system_timerfd_create_monotonic() -> Result<CInt, Errno> {
    valueOrErrno(.timerfdCreate) { timerfd_create(CLOCK_MONOTONIC, CInt(TFD_NONBLOCK | TFD_CLOEXEC)) }
}

/// Arms a timer to expire once at `deadlineNanoseconds` on its clock (an
/// absolute time, as `system_clock_gettime_monotonic()` returns for `CLOCK_MONOTONIC`);
/// 0 disarms it. A deadline already past expires at once.
/// The corresponding C function is `timerfd_settime` with `TFD_TIMER_ABSTIME`.
package func system_timerfd_settime_absolute(_ fd: CInt, deadlineNanoseconds: Int64) -> Result<Void, Errno> {
    var value = itimerspec()
    value.it_value.tv_sec = Int(deadlineNanoseconds / 1_000_000_000)
    value.it_value.tv_nsec = Int(deadlineNanoseconds % 1_000_000_000)
    if deadlineNanoseconds != 0 && value.it_value.tv_sec == 0 && value.it_value.tv_nsec == 0 {
        value.it_value.tv_nsec = 1
    }
    return valueOrErrno(.timerfdSettime) { timerfd_settime(fd, CInt(TFD_TIMER_ABSTIME), &value, nil) }.map { _ in () }
}
