// The process itself: its id, ending it, and the clock-tick unit of the
// CPU times in `/proc`. None of these calls can fail.
import CEpollShim
// exit, which CEpollShim does not include.
import Glibc

/// Ends the process with `status`, flushing the C streams first.
/// The corresponding C function is `exit`.
package func system_exit(_ status: CInt) -> Never {
    exit(status)
}

/// The calling process's id; it cannot fail. The corresponding C function is `getpid`.
package func system_getpid() -> pid_t {
    getpid()
}

/// Clock ticks per second, the unit of CPU times in `/proc/PID/stat`.
/// The corresponding C function is `sysconf(_SC_CLK_TCK)`.
package func system_sysconf_clock_ticks() -> Int {
    Int(sysconf(CInt(_SC_CLK_TCK)))
}
