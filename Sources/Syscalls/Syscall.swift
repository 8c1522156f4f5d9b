/// The name of each libc call the package makes, so that the debug-only
/// mocking hook (see `SyscallMock`) can force a chosen errno on a chosen call.
@usableFromInline package enum Syscall: String, Sendable, Hashable, CaseIterable {
    case epollCreate1 = "epoll_create1"
    case epollCtl = "epoll_ctl"
    case epollWait = "epoll_wait"
    case close
    case fcntl
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
    case getpeername
    case recv
    case send
    case writev
    case shutdown
    case eventfd
    case timerfdCreate = "timerfd_create"
    case timerfdSettime = "timerfd_settime"
    case poll
    case select
    case signalfd
    case sigprocmask = "pthread_sigmask"
    case sigaction
    case open
    case dup
    case dup2
    case getrlimit
    case setrlimit
    case kill
}
