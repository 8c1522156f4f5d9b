// poll: the wait over an array of `pollfd`, the entry type, and the `POLL*`
// event bits. The wait goes through the policy of Retry.swift (EINTR retried
// with the time that remains, errno typed).
import CEpollShim
import SystemPackage

/// One entry of the array `system_poll` waits on: the descriptor, the events
/// asked for, and the events returned (C's `struct pollfd`).
package typealias PollDescriptor = pollfd

/// Waits on an array of `pollfd`, retrying EINTR with the time that remains.
/// The corresponding C function is `poll`.
package func system_poll(
    _ fds: UnsafeMutablePointer<PollDescriptor>?,
    _ count: Int,
    timeoutMilliseconds: CInt
) -> Result<CInt, Errno> {
    waitRetryingWithDeadline(.poll, timeoutMilliseconds: timeoutMilliseconds) { poll(fds, nfds_t(count), $0) }
}

/// The `POLL*` bits of `PollDescriptor.events` and `.revents`.
package enum PollEvents {
    /// `POLLIN`: there is data to read.
    package static var `in`: Int16 { Int16(POLLIN) }
    /// `POLLPRI`: there is urgent data to read.
    package static var pri: Int16 { Int16(POLLPRI) }
    /// `POLLOUT`: writing will not block.
    package static var out: Int16 { Int16(POLLOUT) }
    /// `POLLERR`: an error condition (returned only).
    package static var err: Int16 { Int16(POLLERR) }
    /// `POLLHUP`: hang-up (returned only).
    package static var hup: Int16 { Int16(POLLHUP) }
    /// `POLLNVAL`: the descriptor is not open (returned only).
    package static var nval: Int16 { Int16(POLLNVAL) }
}
