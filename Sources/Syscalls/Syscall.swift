// The Syscalls module is the only code of the package that calls libc (and
// the CEpollShim forwarders): one small function per call, named
// `system_<call>` or `system_<call>_<variant>`, each returning the errno as a
// typed `Errno` through the policy of Retry.swift, plus the constants those
// calls take. One file per concept:
//
//   Epoll.swift          epoll_create1, epoll_ctl, epoll_wait, the event array
//   EventFD.swift        eventfd
//   Timers.swift         timerfd_create, timerfd_settime
//   Clock.swift          clock_gettime(CLOCK_MONOTONIC)
//   Descriptors.swift    close, fcntl, read, write, pipe2, open, dup3
//   Poll.swift           poll
//   Select.swift         select, fd_set
//   Sockets.swift        socket, setsockopt, bind, listen, accept4, connect, ...
//   SocketAddress.swift  sockaddr_in, sockaddr_in6, inet_pton, inet_ntop
//   NameResolution.swift getaddrinfo
//   Signals.swift        pthread_sigmask, sigaction, kill
//   Process.swift        exit, getpid, sysconf
//   StandardStreams.swift setvbuf, fflush, the writes to standard error
//   ResourceLimits.swift getrlimit, setrlimit
//   Lock.swift           pthread_mutex
//
// CI (.ci/run) fails if any other target of Sources imports Glibc or
// CEpollShim, names a CEpollShim forwarder, or depends on CEpollShim.

/// The name of each libc call the package makes, so that the debug-only
/// mocking hook (see `SyscallMock`) can force a chosen errno on a chosen call.
@usableFromInline package enum Syscall: String, Sendable, Hashable, CaseIterable {
    case epollCreate1 = "epoll_create1"
    case epollCtl = "epoll_ctl"
    case epollWait = "epoll_wait"
    case close
    case fcntl
    case ioctl
    case read
    case write
    case pipe2
    case socketpair
    case socket
    case setsockopt
    case getsockopt
    case bind
    case listen
    case accept4
    case connect
    case getsockname
    case recv
    case send
    case shutdown
    case eventfd
    case timerfdCreate = "timerfd_create"
    case timerfdSettime = "timerfd_settime"
    case poll
    case select
    case pthreadSigmask = "pthread_sigmask"
    case sigaction
    case open
    case dup3
    case fstat
    case getrlimit
    case setrlimit
    case kill
}
