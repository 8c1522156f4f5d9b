// epoll: creating an instance, changing its interest list, waiting on it, the
// array of `epoll_event` it fills, and the `EPOLL*` constants. Every call goes
// through the policy of Retry.swift (EINTR retried, errno typed).
import CEpollShim
import SystemPackage

/// Creates an epoll instance. The corresponding C function is `epoll_create1`.
package func system_epoll_create1(_ flags: CInt) -> Result<CInt, Errno> {
    valueOrErrno(.epollCreate1) { epoll_create1(flags) }
}

/// Adds, changes or removes an interest. The corresponding C function is `epoll_ctl`.
package func system_epoll_ctl(_ epfd: CInt, _ op: CInt, _ fd: CInt, events: UInt32, data: UInt64) -> Result<
    Void, Errno
> {
    var event = cepoll_event_make(events, data)
    return valueOrErrno(.epollCtl) { epoll_ctl(epfd, op, fd, &event) }.map { _ in () }
}

/// Waits for events, retrying EINTR with the time that remains.
/// The corresponding C function is `epoll_wait`.
package func system_epoll_wait(
    _ epfd: CInt,
    _ events: EpollEventArray,
    _ maxEvents: CInt,
    timeoutMilliseconds: CInt
) -> Result<CInt, Errno> {
    waitRetryingWithDeadline(.epollWait, timeoutMilliseconds: timeoutMilliseconds) {
        epoll_wait(epfd, events.base, maxEvents, $0)
    }
}

/// A caller-owned array of `epoll_event` for `system_epoll_wait` to fill:
/// allocate it once, read the events of each wait by index, deallocate it
/// once. (`epoll_event` is packed on x86_64, so its fields are read through
/// the shim rather than by Swift.)
@usableFromInline package struct EpollEventArray {
    /// The first element.
    @usableFromInline let base: UnsafeMutablePointer<epoll_event>

    /// Allocates room for `capacity` events, uninitialized until a wait fills them.
    package init(capacity: Int) {
        base = .allocate(capacity: capacity)
    }

    /// Frees the array; it must not be used afterwards.
    package func deallocate() {
        base.deallocate()
    }

    /// The 64-bit `epoll_data` of the event at `index`.
    @inlinable @inline(__always)
    package func data(at index: Int) -> UInt64 {
        cepoll_event_data(base, CInt(index))
    }

    /// The `EPOLL*` mask of the event at `index`.
    @inlinable @inline(__always)
    package func events(at index: Int) -> UInt32 {
        cepoll_event_events(base, CInt(index))
    }
}

/// The flag of `system_epoll_create1`.
package enum EpollCreateFlags {
    /// `EPOLL_CLOEXEC`: the descriptor is closed in programs the process starts.
    package static var closeOnExec: CInt { CInt(EPOLL_CLOEXEC) }
}

/// The operations of `system_epoll_ctl`.
package enum EpollOperation {
    /// `EPOLL_CTL_ADD`: registers a descriptor.
    package static var add: CInt { EPOLL_CTL_ADD }
    /// `EPOLL_CTL_MOD`: changes a registration.
    package static var modify: CInt { EPOLL_CTL_MOD }
    /// `EPOLL_CTL_DEL`: removes a registration.
    package static var delete: CInt { EPOLL_CTL_DEL }
}

/// The `EPOLL*` event bits of `<sys/epoll.h>`, named after the constant
/// without its prefix. Inlinable, so that a test of a bit in a loop over
/// events compiles to a bit test, with no call.
@usableFromInline package enum EpollEventBits {
    /// `EPOLLIN`
    @inlinable package static var `in`: UInt32 { EPOLLIN.rawValue }
    /// `EPOLLPRI`
    @inlinable package static var pri: UInt32 { EPOLLPRI.rawValue }
    /// `EPOLLOUT`
    @inlinable package static var out: UInt32 { EPOLLOUT.rawValue }
    /// `EPOLLERR`
    @inlinable package static var err: UInt32 { EPOLLERR.rawValue }
    /// `EPOLLHUP`
    @inlinable package static var hup: UInt32 { EPOLLHUP.rawValue }
    /// `EPOLLRDNORM`
    @inlinable package static var rdnorm: UInt32 { EPOLLRDNORM.rawValue }
    /// `EPOLLRDBAND`
    @inlinable package static var rdband: UInt32 { EPOLLRDBAND.rawValue }
    /// `EPOLLWRNORM`
    @inlinable package static var wrnorm: UInt32 { EPOLLWRNORM.rawValue }
    /// `EPOLLWRBAND`
    @inlinable package static var wrband: UInt32 { EPOLLWRBAND.rawValue }
    /// `EPOLLMSG`
    @inlinable package static var msg: UInt32 { EPOLLMSG.rawValue }
    /// `EPOLLRDHUP`
    @inlinable package static var rdhup: UInt32 { EPOLLRDHUP.rawValue }
    /// `EPOLLEXCLUSIVE`
    @inlinable package static var exclusive: UInt32 { EPOLLEXCLUSIVE.rawValue }
    /// `EPOLLWAKEUP`
    @inlinable package static var wakeup: UInt32 { EPOLLWAKEUP.rawValue }
    /// `EPOLLONESHOT`
    @inlinable package static var oneshot: UInt32 { EPOLLONESHOT.rawValue }
    /// `EPOLLET`
    @inlinable package static var et: UInt32 { EPOLLET.rawValue }
}
