// select: the wait over three descriptor sets, and the set itself (`fd_set`
// behind the `FD_*` macros). The wait goes through the policy of Retry.swift
// (EINTR retried with the time that remains, errno typed).
import CEpollShim
import SystemPackage

/// Waits on descriptor sets, retrying EINTR with the time that remains. The
/// sets are rebuilt by `prepare`, which returns the highest descriptor plus
/// one, before each attempt, because `select` overwrites them.
/// The corresponding C function is `select`.
package func system_select(
    _ readSet: DescriptorSet,
    _ writeSet: DescriptorSet,
    _ exceptSet: DescriptorSet,
    timeoutMilliseconds: CInt,
    prepare: () -> CInt
) -> Result<CInt, Errno> {
    waitRetryingWithDeadline(.select, timeoutMilliseconds: timeoutMilliseconds) { ms in
        let count = prepare()
        if ms < 0 { return select(count, readSet.pointer, writeSet.pointer, exceptSet.pointer, nil) }
        var interval = timeval(tv_sec: Int(ms / 1000), tv_usec: Int(ms % 1000) * 1000)
        return select(count, readSet.pointer, writeSet.pointer, exceptSet.pointer, &interval)
    }
}

/// A heap-allocated `fd_set` for `select(2)`, reused across calls. Every
/// access checks the descriptor against `FD_SETSIZE`, so nothing is ever
/// written outside the set (the `FD_SET` macro itself does not check).
package final class DescriptorSet {
    /// The set, as `select` takes it.
    let pointer: UnsafeMutablePointer<fd_set>

    /// `FD_SETSIZE`: descriptors numbered from this one up cannot be in a set.
    package static let capacity = Int(CEPOLL_FD_SETSIZE)

    /// Creates an empty set.
    package init() {
        pointer = .allocate(capacity: 1)
        cepoll_fd_zero(pointer)
    }

    deinit {
        pointer.deallocate()
    }

    /// Empties the set. The corresponding C macro is `FD_ZERO`.
    package func removeAll() {
        cepoll_fd_zero(pointer)
    }

    /// Adds `fd`. The corresponding C macro is `FD_SET`.
    package func insert(_ fd: CInt) {
        precondition(fd >= 0 && Int(fd) < Self.capacity, "descriptor \(fd) outside fd_set")
        cepoll_fd_set(fd, pointer)
    }

    /// Whether `fd` is in the set. The corresponding C macro is `FD_ISSET`.
    package func contains(_ fd: CInt) -> Bool {
        precondition(fd >= 0 && Int(fd) < Self.capacity, "descriptor \(fd) outside fd_set")
        return cepoll_fd_isset(fd, pointer) != 0
    }
}
