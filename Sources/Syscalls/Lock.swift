// A pthread mutex and the state it guards.
import CEpollShim

/// State behind a `pthread_mutex_t`, for the few places that threads share.
///
/// Why not the standard library's `Mutex`: on Linux it hands a contended lock
/// over through a futex inside the (uninstrumented) standard library, so
/// ThreadSanitizer cannot see the hand-off and reports a race that is not
/// there. A pthread mutex is intercepted by every sanitizer, which keeps
/// `swift test --sanitize=thread` free of suppressions.
package final class Lock<State>: @unchecked Sendable {
    // @unchecked: every access to `state` happens with `mutex` held.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var state: State

    /// Creates a lock guarding `state`.
    package init(_ state: State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the state, the lock held.
    /// The corresponding C functions are `pthread_mutex_lock` and `pthread_mutex_unlock`.
    package func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
