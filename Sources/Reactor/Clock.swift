import Synchronization
import Syscalls

/// The monotonic time source of an `EventLoop`, injectable so that tests can
/// drive timers by hand. Times are nanoseconds from an arbitrary origin.
public protocol LoopClock: Sendable {
    /// The current time in nanoseconds; never goes back.
    func now() -> UInt64
}

/// `CLOCK_MONOTONIC`: the clock every real loop uses.
public struct SystemClock: LoopClock {
    /// Creates the clock.
    public init() {}

    /// The current monotonic time in nanoseconds.
    public func now() -> UInt64 { UInt64(system_clock_gettime_monotonic()) }
}

/// A clock that moves only when told to, for testing timers.
///
/// ```swift
/// let clock = ManualClock()
/// let loop = try EventLoop(selector: try EpollSelector<Int>(), clock: clock)
/// loop.schedule(after: .seconds(5)) { fired = true }
/// clock.advance(by: .seconds(5))
/// try loop.runOnce(timeout: .zero)   // fires
/// ```
public final class ManualClock: LoopClock {
    private let current: Atomic<UInt64>

    /// Creates a clock that reads `start` nanoseconds.
    public init(start: UInt64 = 0) {
        current = Atomic(start)
    }

    /// The time the clock was last set or advanced to.
    public func now() -> UInt64 { current.load(ordering: .acquiring) }

    /// Moves the clock forward by `duration` (negative durations are ignored).
    public func advance(by duration: Duration) {
        current.add(nanoseconds(duration), ordering: .acquiringAndReleasing)
    }
}

/// A non-negative duration in whole nanoseconds, saturating at `UInt64.max`.
func nanoseconds(_ duration: Duration) -> UInt64 {
    if duration <= .zero { return 0 }
    let (seconds, attoseconds) = duration.components
    let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
    if overflow { return .max }
    let (total, overflow2) = whole.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000))
    return overflow2 ? .max : total
}
