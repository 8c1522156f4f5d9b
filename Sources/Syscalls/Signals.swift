// Signals: the thread's signal mask, the actions of signals (forwarded to a
// pipe, ignored, or back to the default), sending a signal, and the signal
// numbers the package's programs handle. Every call goes through the policy
// of Retry.swift (EINTR retried, errno typed).
import CEpollShim
import SystemPackage

/// Changes the calling thread's signal mask. The corresponding C function is `pthread_sigmask`.
package func system_pthread_sigmask(
    _ how: CInt, _ set: UnsafePointer<sigset_t>?, _ old: UnsafeMutablePointer<sigset_t>?
) -> Result<Void, Errno> {
    valueOrErrno(.pthreadSigmask) {
        let status = pthread_sigmask(how, set, old)
        if status == 0 { return 0 }
        cepoll_set_errno(status)
        return -1
    }.map { _ in () }
}

/// Unblocks `signals` for the calling thread (and the threads it creates
/// later). A process started by a parent whose thread blocked SIGTERM
/// inherits that mask, and would otherwise never see the signal.
/// The corresponding C function is `pthread_sigmask(SIG_UNBLOCK)`.
package func system_pthread_sigmask_unblock(_ signals: [CInt]) -> Result<Void, Errno> {
    var set = sigset_t()
    sigemptyset(&set)
    for signal in signals { sigaddset(&set, signal) }
    return system_pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

/// Forwards `signo` to the pipe `fd` as one byte per delivery (the self-pipe
/// trick). The corresponding C function is `sigaction`.
package func system_sigaction_forward(_ signo: CInt, to fd: CInt) -> Result<Void, Errno> {
    valueOrErrno(.sigaction) { cepoll_signal_forward(signo, fd) }.map { _ in () }
}

/// Restores the default action of `signo` if it is still forwarded to `fd`
/// (another forward since then wins). The corresponding C function is `sigaction`.
package func system_sigaction_release(_ signo: CInt, from fd: CInt) -> Result<Void, Errno> {
    valueOrErrno(.sigaction) { cepoll_signal_release(signo, fd) }.map { _ in () }
}

/// Ignores `signo`. The corresponding C function is `sigaction`.
package func system_sigaction_ignore(_ signo: CInt) -> Result<Void, Errno> {
    valueOrErrno(.sigaction) { cepoll_signal_ignore(signo) }.map { _ in () }
}

/// Sends `signo` to the process `pid`. The corresponding C function is `kill`.
package func system_kill(_ pid: pid_t, _ signo: CInt) -> Result<Void, Errno> {
    valueOrErrno(.kill) { kill(pid, signo) }.map { _ in () }
}

/// The signal numbers of `<signal.h>` that the package's programs handle.
package enum SignalNumber {
    /// `SIGINT`: interrupt from the terminal (Ctrl-C).
    package static var interrupt: CInt { SIGINT }
    /// `SIGTERM`: a request to terminate.
    package static var terminate: CInt { SIGTERM }
    /// `SIGHUP`: hang-up; upper-echo prints its counters.
    package static var hangUp: CInt { SIGHUP }
    /// `SIGPIPE`: a write to a pipe or socket whose reader is gone.
    package static var brokenPipe: CInt { SIGPIPE }
}
