// The only file of the package that calls libc. One small function per call;
// each goes through `valueOrErrno` (EINTR retried, except for `close`) or
// `waitRetryingWithDeadline` (waits retried with the time that remains), and
// each returns the errno as a typed `Errno`, never a magic -1.
import CEpollShim
// stdio and exit, which CEpollShim does not include; @preconcurrency because
// glibc declares `stdout` as a mutable global, which Swift 6 rejects otherwise.
@preconcurrency import Glibc
import SystemPackage

// MARK: epoll

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
    _ events: UnsafeMutablePointer<epoll_event>,
    _ maxEvents: CInt,
    timeoutMilliseconds: CInt
) -> Result<CInt, Errno> {
    waitRetryingWithDeadline(.epollWait, timeoutMilliseconds: timeoutMilliseconds) {
        epoll_wait(epfd, events, maxEvents, $0)
    }
}

// MARK: descriptors

/// Closes a descriptor, never retrying: on Linux the descriptor is released
/// even when `close` reports EINTR. The corresponding C function is `close`.
package func system_close(_ fd: CInt) -> Result<Void, Errno> {
    valueOrErrno(.close, retryOnInterrupt: false) { close(fd) }.map { _ in () }
}

/// `fcntl(fd, cmd)`. The corresponding C function is `fcntl`.
package func system_fcntl(_ fd: CInt, _ cmd: CInt) -> Result<CInt, Errno> {
    valueOrErrno(.fcntl) { cepoll_fcntl0(fd, cmd) }
}

/// `fcntl(fd, cmd, arg)`. The corresponding C function is `fcntl`.
package func system_fcntl(_ fd: CInt, _ cmd: CInt, _ arg: CInt) -> Result<CInt, Errno> {
    valueOrErrno(.fcntl) { cepoll_fcntl1(fd, cmd, arg) }
}

/// Reads up to `buffer.count` bytes. The corresponding C function is `read`.
package func system_read(_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer) -> Result<Int, Errno> {
    valueOrErrno(.read) { read(fd, buffer.baseAddress, buffer.count) }
}

/// Writes up to `buffer.count` bytes. The corresponding C function is `write`.
package func system_write(_ fd: CInt, _ buffer: UnsafeRawBufferPointer) -> Result<Int, Errno> {
    valueOrErrno(.write) { write(fd, buffer.baseAddress, buffer.count) }
}

/// Creates a pipe. The corresponding C function is `pipe2`.
package func system_pipe2(_ flags: CInt) -> Result<(read: CInt, write: CInt), Errno> {
    var fds: (CInt, CInt) = (-1, -1)
    return withUnsafeMutableBytes(of: &fds) { raw in
        let pointer = raw.baseAddress!.assumingMemoryBound(to: CInt.self)
        return valueOrErrno(.pipe2) { cepoll_pipe2(pointer, flags) }.map { _ in (pointer[0], pointer[1]) }
    }
}

/// Opens a file. The corresponding C function is `open`.
package func system_open(_ path: String, _ flags: CInt, _ mode: mode_t = 0o644) -> Result<CInt, Errno> {
    valueOrErrno(.open) { cepoll_open(path, flags, mode) }
}

/// Duplicates a descriptor. The corresponding C function is `dup`.
package func system_dup(_ fd: CInt) -> Result<CInt, Errno> {
    valueOrErrno(.dup) { dup(fd) }
}

/// Duplicates `fd` onto `target` with close-on-exec set.
/// The corresponding C function is `dup3`.
package func system_dup2(_ fd: CInt, _ target: CInt) -> Result<CInt, Errno> {
    valueOrErrno(.dup2) { cepoll_dup3(fd, target, O_CLOEXEC) }
}

/// Creates an eventfd counter. The corresponding C function is `eventfd`.
package func system_eventfd(_ initial: CUnsignedInt, _ flags: CInt) -> Result<CInt, Errno> {
    valueOrErrno(.eventfd) { eventfd(initial, flags) }
}

/// Reads the soft and hard limit of a resource. The corresponding C function is `getrlimit`.
package func system_getrlimit(_ resource: CInt) -> Result<(soft: UInt64, hard: UInt64), Errno> {
    var limit = rlimit()
    return valueOrErrno(.getrlimit) { getrlimit(__rlimit_resource_t(UInt32(resource)), &limit) }.map { _ in
        (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }
}

/// Sets the soft and hard limit of a resource. The corresponding C function is `setrlimit`.
package func system_setrlimit(_ resource: CInt, soft: UInt64, hard: UInt64) -> Result<Void, Errno> {
    var limit = rlimit(rlim_cur: rlim_t(soft), rlim_max: rlim_t(hard))
    return valueOrErrno(.setrlimit) { setrlimit(__rlimit_resource_t(UInt32(resource)), &limit) }.map { _ in () }
}

// MARK: poll and select

/// Waits on an array of `pollfd`, retrying EINTR with the time that remains.
/// The corresponding C function is `poll`.
package func system_poll(
    _ fds: UnsafeMutablePointer<pollfd>?,
    _ count: Int,
    timeoutMilliseconds: CInt
) -> Result<CInt, Errno> {
    waitRetryingWithDeadline(.poll, timeoutMilliseconds: timeoutMilliseconds) { poll(fds, nfds_t(count), $0) }
}

/// Waits on descriptor sets, retrying EINTR with the time that remains. The
/// sets are rebuilt by `prepare`, which returns the highest descriptor plus
/// one, before each attempt, because `select` overwrites them.
/// The corresponding C function is `select`.
package func system_select(
    _ readSet: UnsafeMutablePointer<fd_set>,
    _ writeSet: UnsafeMutablePointer<fd_set>,
    _ exceptSet: UnsafeMutablePointer<fd_set>,
    timeoutMilliseconds: CInt,
    prepare: () -> CInt
) -> Result<CInt, Errno> {
    waitRetryingWithDeadline(.select, timeoutMilliseconds: timeoutMilliseconds) { ms in
        let count = prepare()
        if ms < 0 { return select(count, readSet, writeSet, exceptSet, nil) }
        var interval = timeval(tv_sec: Int(ms / 1000), tv_usec: Int(ms % 1000) * 1000)
        return select(count, readSet, writeSet, exceptSet, &interval)
    }
}

// MARK: signals

/// Changes the calling thread's signal mask. The corresponding C function is `pthread_sigmask`.
package func system_sigprocmask(_ how: CInt, _ set: UnsafePointer<sigset_t>?, _ old: UnsafeMutablePointer<sigset_t>?)
    -> Result<Void, Errno>
{
    valueOrErrno(.sigprocmask) {
        let status = pthread_sigmask(how, set, old)
        if status == 0 { return 0 }
        cepoll_set_errno(status)
        return -1
    }.map { _ in () }
}

/// Creates or changes a signalfd. The corresponding C function is `signalfd`.
package func system_signalfd(_ fd: CInt, _ mask: UnsafePointer<sigset_t>, _ flags: CInt) -> Result<CInt, Errno> {
    valueOrErrno(.signalfd) { signalfd(fd, mask, flags) }
}

// MARK: process

/// Makes the C `stdout` stream (which Swift's `print` writes to) flush at
/// every newline even when it is a pipe, so that a parent process reads each
/// line as soon as it is printed. The corresponding C function is `setvbuf`.
package func system_line_buffer_stdout() {
    _ = setvbuf(stdout, nil, _IOLBF, 0)
}

/// Ends the process with `status`, flushing the C streams first.
/// The corresponding C function is `exit`.
package func system_exit(_ status: CInt) -> Never {
    exit(status)
}

/// Forwards `signo` to the pipe `fd` as one byte per delivery (the self-pipe
/// trick). The corresponding C function is `sigaction`.
package func system_signal_forward(_ signo: CInt, to fd: CInt) -> Result<Void, Errno> {
    valueOrErrno(.sigaction) { cepoll_signal_forward(signo, fd) }.map { _ in () }
}

/// Restores the default action of `signo` if it is still forwarded to `fd`
/// (another forward since then wins). The corresponding C function is `sigaction`.
package func system_signal_release(_ signo: CInt, from fd: CInt) -> Result<Void, Errno> {
    valueOrErrno(.sigaction) { cepoll_signal_release(signo, fd) }.map { _ in () }
}

/// Restores the default action of `signo`. The corresponding C function is `sigaction`.
package func system_signal_default(_ signo: CInt) -> Result<Void, Errno> {
    valueOrErrno(.sigaction) { cepoll_signal_default(signo) }.map { _ in () }
}

/// Ignores `signo`. The corresponding C function is `sigaction`.
package func system_signal_ignore(_ signo: CInt) -> Result<Void, Errno> {
    valueOrErrno(.sigaction) { cepoll_signal_ignore(signo) }.map { _ in () }
}

/// Sends `signo` to the process `pid`. The corresponding C function is `kill`.
package func system_kill(_ pid: pid_t, _ signo: CInt) -> Result<Void, Errno> {
    valueOrErrno(.kill) { kill(pid, signo) }.map { _ in () }
}

/// The calling process's id; it cannot fail. The corresponding C function is `getpid`.
package func system_getpid() -> pid_t {
    getpid()
}

// MARK: process

/// Flushes the C standard output buffer, so that a line printed with `print`
/// reaches a pipe at once. The corresponding C function is `fflush`.
package func system_flush_stdout() {
    fflush(stdout)
}

/// Writes `text` to standard error, unbuffered. The corresponding C function is `write`.
package func system_write_stderr(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var rest = UnsafeRawBufferPointer(bytes)
        while !rest.isEmpty, case .success(let written) = system_write(2, rest), written > 0 {
            rest = UnsafeRawBufferPointer(rebasing: rest[written...])
        }
    }
}

/// Raises the soft limit on open descriptors to the hard limit and returns
/// the new soft limit. Servers do this at start: the default soft limit
/// (often 1024) is far below what the kernel allows.
package func system_raise_descriptor_limit() -> UInt64 {
    guard case .success(let limit) = system_getrlimit(CInt(RLIMIT_NOFILE.rawValue)) else { return 0 }
    if limit.soft < limit.hard,
        case .success = system_setrlimit(CInt(RLIMIT_NOFILE.rawValue), soft: limit.hard, hard: limit.hard)
    {
        return limit.hard
    }
    return limit.soft
}

/// Unblocks `signals` for the calling thread (and the threads it creates
/// later). A process started by a parent whose thread blocked SIGTERM
/// inherits that mask, and would otherwise never see the signal.
/// The corresponding C function is `pthread_sigmask(SIG_UNBLOCK)`.
package func system_unblock_signals(_ signals: [CInt]) -> Result<Void, Errno> {
    var set = sigset_t()
    sigemptyset(&set)
    for signal in signals { sigaddset(&set, signal) }
    return system_sigprocmask(SIG_UNBLOCK, &set, nil)
}

/// The whole content of a small file such as `/proc/PID/stat`, or `nil`.
/// The corresponding C functions are `open`, `read` and `close`.
package func system_read_file(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
    guard case .success(let fd) = system_open(path, O_RDONLY | O_CLOEXEC) else { return nil }
    defer { _ = system_close(fd) }
    var content: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while content.count < limit {
        guard case .success(let count) = chunk.withUnsafeMutableBytes({ system_read(fd, $0) }) else { return nil }
        if count == 0 { break }
        content += chunk[..<count]
    }
    return content
}

/// Clock ticks per second, the unit of CPU times in `/proc/PID/stat`.
/// The corresponding C function is `sysconf(_SC_CLK_TCK)`.
package func system_clock_ticks_per_second() -> Int {
    Int(sysconf(CInt(_SC_CLK_TCK)))
}
