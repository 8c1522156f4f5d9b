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

/// State behind a pthread mutex with a condition variable: threads wait
/// until the state satisfies a predicate, and whoever changes it wakes them.
/// For rare hand-shakes (a thread reporting that it started), not hot paths.
package final class Condition<State>: @unchecked Sendable {
    // @unchecked: every access to `state` happens with `mutex` held.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var state: State

    /// Creates a condition guarding `state`.
    package init(_ state: State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        precondition(pthread_cond_init(condition, nil) == 0, "pthread_cond_init failed")
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the state, the lock held, then wakes every waiter.
    /// The corresponding C function is `pthread_cond_broadcast`.
    package func update<R>(_ body: (inout State) -> R) -> R {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        return body(&state)
    }

    /// Waits until `predicate` holds for the state, then returns what `body`
    /// makes of it, the lock held throughout, and wakes every other waiter
    /// (`body` may have changed the state they wait on). The corresponding C
    /// functions are `pthread_cond_wait` and `pthread_cond_broadcast`.
    package func wait<R>(until predicate: (State) -> Bool, then body: (inout State) -> R) -> R {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        while !predicate(state) { pthread_cond_wait(condition, mutex) }
        return body(&state)
    }
}
