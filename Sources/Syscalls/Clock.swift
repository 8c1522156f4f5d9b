// The monotonic clock, read the way every deadline of the package is kept.
import CEpollShim

/// The monotonic clock (`CLOCK_MONOTONIC`) in nanoseconds: never jumps, never
/// goes back, and keeps counting while the process waits.
///
/// The corresponding C function is `clock_gettime`.
package func system_clock_gettime_monotonic() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}
