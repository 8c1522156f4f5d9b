// Helpers shared by the LinuxEpoll suites: real kernel objects (socket pairs,
// pipes, eventfds, TCP connections over 127.0.0.1, regular files) and a few
// descriptor checks. Everything goes through the Syscalls layer.
import CEpollShim
import Foundation
import Glibc
import LinuxEpoll
import SystemPackage
import Syscalls

typealias Events = Epoll.Events

/// Floors for `moveAbove(_:floor:)`. Tests that must name a descriptor after
/// it was closed (or check that it was closed) move it far above the numbers
/// that parallel tests get from the kernel (always the lowest free one), so
/// that no other test can be handed the same number in between. Each test
/// has its own floor.
enum DescriptorFloor {
    static let adopted: CInt = 2100
    static let adoptedDeinit: CInt = 2200
    static let registeredThenClosed: CInt = 3100
    static let unregisteredAfterClose: CInt = 3200
    static let differential: CInt = 4000
}

/// A connected, non-blocking, close-on-exec `AF_UNIX` stream socket pair.
func makeSocketPair() throws -> (CInt, CInt) {
    let type = CInt(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
    return try system_socketpair(AF_UNIX, type).get()
}

/// A non-blocking, close-on-exec pipe.
func makePipe() throws -> (read: CInt, write: CInt) {
    try system_pipe2(O_NONBLOCK | O_CLOEXEC).get()
}

/// An eventfd holding `initial`: readable when non-zero, always writable.
func makeEventFD(initial: UInt32 = 0) throws -> CInt {
    try system_eventfd(initial, CInt(EFD_NONBLOCK | EFD_CLOEXEC)).get()
}

/// A regular file (created, then unlinked so that nothing is left behind).
func makeRegularFile() throws -> CInt {
    var template = Array("/tmp/epoll-tests-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard fd >= 0 else { throw Errno(rawValue: errno) }
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    _ = system_fcntl(fd, F_SETFD, FD_CLOEXEC)
    return fd
}

/// A TCP connection over 127.0.0.1: the client end and the accepted end.
func makeTCPConnection() throws -> (client: CInt, server: CInt) {
    let type = CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)
    let listener = try system_socket(AF_INET, type).get()
    defer { closeAll(listener) }
    try system_bind(listener, SocketAddress(host: "127.0.0.1", port: 0)!).get()
    try system_listen(listener, 8).get()
    let address = try system_getsockname(listener).get()
    let client = try system_socket(AF_INET, type).get()
    do {
        try system_connect(client, address).get()
        let server = try system_accept4(listener, CInt(SOCK_CLOEXEC.rawValue)).get()
        return (client, server)
    } catch {
        closeAll(client)
        throw error
    }
}

/// Closes every descriptor given, ignoring errors (cleanup only).
func closeAll(_ fds: CInt...) {
    for fd in fds where fd >= 0 { _ = system_close(fd) }
}

/// Writes `text` and returns how many bytes went out.
@discardableResult
func writeText(_ fd: CInt, _ text: String) throws -> Int {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBytes { try system_write(fd, $0).get() }
}

/// Reads at most `count` bytes and returns how many came in.
@discardableResult
func readBytes(_ fd: CInt, upTo count: Int) throws -> Int {
    var bytes = [UInt8](repeating: 0, count: count)
    return try bytes.withUnsafeMutableBytes { try system_read(fd, $0).get() }
}

/// Whether `fd` names an open descriptor (`fcntl(F_GETFD)` does not fail with EBADF).
func isOpen(_ fd: CInt) -> Bool {
    if case .failure(.badFileDescriptor) = system_fcntl(fd, F_GETFD) { return false }
    return true
}

/// Whether `fd` has `FD_CLOEXEC` set.
func isCloseOnExec(_ fd: CInt) throws -> Bool {
    try system_fcntl(fd, F_GETFD).get() & FD_CLOEXEC != 0
}

/// Raises the soft `RLIMIT_NOFILE` to at least `count` (never lowers it).
/// Raising is harmless to tests running in parallel.
func ensureDescriptorLimit(atLeast count: UInt64) throws {
    let resource = CInt(RLIMIT_NOFILE.rawValue)
    let (soft, hard) = try system_getrlimit(resource).get()
    guard soft < count else { return }
    try system_setrlimit(resource, soft: min(count, hard), hard: hard).get()
}

/// Duplicates `fd` onto the lowest free number at or above `floor`
/// (`F_DUPFD_CLOEXEC`), closes the original, and returns the new number.
func moveAbove(_ fd: CInt, floor: CInt) throws -> CInt {
    try ensureDescriptorLimit(atLeast: UInt64(floor) + 1000)
    defer { closeAll(fd) }
    return try system_fcntl(fd, F_DUPFD_CLOEXEC, floor).get()
}

/// The events of one poll as a dictionary from descriptor to flags, so that
/// tests do not depend on the kernel's order.
func byDescriptor(_ events: [Epoll.Event]) -> [CInt: Events] {
    Dictionary(events.map { ($0.fileDescriptor.rawValue, $0.events) }, uniquingKeysWith: { $0.union($1) })
}

/// An error type thrown by test bodies to check that a scope closes on throw.
struct MarkerError: Error, Equatable {}

/// The errno of a failed syscall, or `nil` when it succeeded.
func failure<T>(_ result: Result<T, Errno>) -> Errno? {
    if case .failure(let errno) = result { return errno }
    return nil
}

/// The kernel's id of the calling thread (what `gettid` returns), read from
/// the `/proc/thread-self` link (`PID/task/TID`); `nil` if it cannot be read.
func currentThreadID() -> pid_t? {
    guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self"),
        let last = target.split(separator: "/").last
    else { return nil }
    return pid_t(last)
}

/// Whether thread `thread` (a kernel thread id of this process) is asleep in
/// `epoll_wait`: its `/proc` `wchan`, the kernel function it sleeps in, names
/// epoll (`do_epoll_wait`). Where the kernel hides `wchan` (it reads `0`),
/// whether the thread is asleep at all (state `S` in its `stat`). The same
/// check as TestSupport's, which this target does not depend on.
func isBlockedInEpollWait(_ thread: pid_t) -> Bool {
    let base = "/proc/self/task/\(thread)/"
    if let bytes = system_read_file(base + "wchan") {
        let wchan = String(decoding: bytes, as: UTF8.self)
        if !wchan.isEmpty && wchan != "0" { return wchan.contains("epoll") }
    }
    guard let bytes = system_read_file(base + "stat") else { return false }
    let stat = String(decoding: bytes, as: UTF8.self)
    // After the parenthesised name: a space, then the state.
    guard let nameEnd = stat.lastIndex(of: ")") else { return false }
    return stat[nameEnd...].dropFirst(2).first == "S"
}
