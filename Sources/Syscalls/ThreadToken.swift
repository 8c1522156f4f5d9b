import CEpollShim

/// A value unique to the calling thread while it lives: the address of a C
/// `_Thread_local` byte, read anew on every call (never `pthread_self()`,
/// whose `const` declaration lets a compiler reuse a stale result).
///
/// For checks that code runs on the thread it belongs to; compare tokens,
/// never store one past its thread's end.
@inline(__always)
public func system_current_thread_token() -> UnsafeRawPointer {
    UnsafeRawPointer(cepoll_current_thread_token())
}
