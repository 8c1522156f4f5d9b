// A set-once flag shared across threads (no libc call).
import Synchronization

/// A flag that can be set once, from any thread; `set()` reports whether
/// this call was the one that set it. Used to make `close()` idempotent on
/// types shared across threads.
package final class AtomicFlag: Sendable {
    private let value = Atomic<Bool>(false)

    /// Creates an unset flag.
    package init() {}

    /// Whether the flag is set.
    package var isSet: Bool { value.load(ordering: .acquiring) }

    /// Sets the flag; true only for the call that changed it.
    package func set() -> Bool {
        !value.exchange(true, ordering: .acquiringAndReleasing)
    }
}
