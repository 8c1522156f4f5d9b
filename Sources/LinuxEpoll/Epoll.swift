import SystemPackage
import Syscalls

/// An epoll instance: Python's `select.epoll`, in Swift.
///
/// Register the descriptors to watch once, then `poll` as often as you like:
/// each call costs what is *ready*, not what is *watched*, which is why epoll
/// keeps its speed at 10,000 descriptors where `select` gives up at 1,024.
///
/// ```swift
/// let epoll = try Epoll()
/// try epoll.register(listener, events: .in)
/// for event in try epoll.poll(timeout: .seconds(1)) {
///     if event.events.contains(.in) { /* accept or read */ }
///     if !event.events.isDisjoint(with: [.err, .hup]) { /* close it */ }
/// }
/// epoll.close()
/// ```
///
/// A complete, compiled example: `Snippets/EpollExample.swift` (`swift run EpollExample`).
///
/// ## Notes
///
/// - **Level-triggered by default**, as in Python: a descriptor is reported
///   on every poll for as long as it is ready. With `.et` it is reported once
///   per change, so read or write until the call would block.
/// - **Spurious events happen**: a reported descriptor may still block, so
///   sockets polled with epoll should be non-blocking.
/// - **`.err` and `.hup` are always reported**, even with an event mask of 0.
/// - **Closing a descriptor removes it** from every epoll instance only once
///   every duplicate of it (`dup`, `fork`) is closed; unregister first.
/// - **Threads**: the kernel allows `register`, `modify` and `unregister`
///   from one thread while another polls, and so does CPython. `Epoll` is
///   not `Sendable`, because `close` racing any other call would act on a
///   descriptor number that may already belong to someone else; confine an
///   `Epoll` to one thread, or hand it over and stop using it.
///
/// The instance owns its descriptor: `close()` releases it (once; later calls
/// do nothing), and `deinit` closes it if you did not.
public final class Epoll {
    /// -1 once closed.
    private var descriptor: CInt

    /// The kernel event array behind `poll(timeout:maxEvents:)`, grown on demand
    /// and reused, so a steady poll loop allocates only the returned array.
    private var scratch: EventBuffer?

    /// Python's `maxevents=-1`: `FD_SETSIZE - 1`, 1023 events per poll.
    public static let defaultMaxEvents = DescriptorSet.capacity - 1

    /// Creates an epoll instance, always close-on-exec (`EPOLL_CLOEXEC`), as
    /// Python does: the descriptor does not leak into child processes.
    ///
    /// - Throws: `EpollError.limitReached` when the process or the system is
    ///   out of descriptors or memory.
    ///
    /// The corresponding C function is `epoll_create1(EPOLL_CLOEXEC)`; the
    /// Python name is `select.epoll()`.
    public init() throws(EpollError) {
        switch system_epoll_create1(EpollCreateFlags.closeOnExec) {
        case .success(let fd): descriptor = fd
        case .failure(let errno): throw EpollError(errno)
        }
    }

    /// Creates an epoll instance after validating a size hint as Python does.
    /// The kernel has ignored the hint since Linux 2.6.8.
    ///
    /// - Parameter sizeHint: -1 (no hint) or a positive number.
    /// - Throws: `EpollError.invalidValue` for 0 or anything below -1 (Python's
    ///   `ValueError`), or the errors of `init()`.
    ///
    /// The Python name is `select.epoll(sizehint)`.
    public convenience init(sizeHint: Int) throws(EpollError) {
        guard sizeHint == -1 || sizeHint > 0 else {
            throw .invalidValue("negative sizehint (\(sizeHint)): use -1 or a positive number")
        }
        try self.init()
    }

    /// Takes ownership of an existing epoll descriptor, as is, without
    /// duplicating or checking it: the new `Epoll` closes it. A descriptor
    /// that is not an epoll instance makes later calls fail with
    /// `EpollError.invalidArgument` or `.badDescriptor`.
    ///
    /// The Python name is `select.epoll.fromfd(fd)`.
    public init(adopting fileDescriptor: FileDescriptor) {
        descriptor = fileDescriptor.rawValue
    }

    /// Takes ownership of an existing raw epoll descriptor; see
    /// `init(adopting:)` with a `FileDescriptor`.
    public convenience init(adopting rawFileDescriptor: CInt) {
        self.init(adopting: FileDescriptor(rawValue: rawFileDescriptor))
    }

    deinit {
        if descriptor >= 0 { _ = system_close(descriptor) }
    }

    /// Whether `close()` was called. Python: `epoll.closed`.
    public var isClosed: Bool { descriptor < 0 }

    /// The epoll instance's own descriptor, for nesting it in another epoll
    /// or handing it to `init(adopting:)`. It stays owned by this `Epoll`.
    ///
    /// - Throws: `EpollError.closed` once closed. Python: `epoll.fileno()`.
    public var fileDescriptor: FileDescriptor {
        get throws(EpollError) { FileDescriptor(rawValue: try openDescriptor()) }
    }

    /// Closes the epoll descriptor. Calling it again does nothing. Closing is
    /// never retried on EINTR: Linux has released the descriptor already.
    ///
    /// The corresponding C function is `close`; the Python name is `epoll.close()`.
    public func close() {
        guard descriptor >= 0 else { return }
        _ = system_close(descriptor)
        descriptor = -1
    }

    /// Runs `body` with this instance, then closes it, even when `body`
    /// throws: Python's `with ep:`.
    ///
    /// - Throws: `EpollError.closed` if the instance is already closed, or
    ///   what `body` throws.
    public func withScope<R>(_ body: (Epoll) throws -> R) throws -> R {
        _ = try openDescriptor()
        defer { close() }
        return try body(self)
    }

    /// Creates an epoll instance, runs `body` with it and closes it: Python's
    /// `with select.epoll() as ep:`.
    public static func withEpoll<R>(_ body: (Epoll) throws -> R) throws -> R {
        try Epoll().withScope(body)
    }

    // MARK: Registration

    /// Starts watching `fileDescriptor` for `events`.
    ///
    /// - Parameters:
    ///   - fileDescriptor: a socket, pipe, eventfd, timerfd, signalfd,
    ///     terminal or another epoll instance; not a regular file.
    ///   - events: what to watch for; Python's default `[.in, .pri, .out]`.
    ///     `.err` and `.hup` are reported whether included or not.
    /// - Throws: `.closed`; `.invalidValue` for a negative descriptor;
    ///   `.alreadyRegistered`; `.badDescriptor`; `.unsupportedFile`;
    ///   `.invalidArgument` (the epoll's own descriptor, `.exclusive` with
    ///   `.oneshot`); `.limitReached`.
    ///
    /// The corresponding C function is `epoll_ctl(EPOLL_CTL_ADD)`; the Python
    /// name is `epoll.register(fd, eventmask)`.
    public func register(_ fileDescriptor: FileDescriptor, events: Events = .default) throws(EpollError) {
        try control(EpollOperation.add, fileDescriptor.rawValue, events: events)
    }

    /// Starts watching a raw descriptor; see `register(_:events:)`.
    public func register(_ rawFileDescriptor: CInt, events: Events = .default) throws(EpollError) {
        try control(EpollOperation.add, rawFileDescriptor, events: events)
    }

    /// Replaces the events watched on a registered descriptor; re-arms a
    /// `.oneshot` registration.
    ///
    /// - Throws: `.closed`; `.invalidValue` for a negative descriptor;
    ///   `.notRegistered`; `.badDescriptor`; `.invalidArgument` (`.exclusive`
    ///   in a modify).
    ///
    /// The corresponding C function is `epoll_ctl(EPOLL_CTL_MOD)`; the Python
    /// name is `epoll.modify(fd, eventmask)`.
    public func modify(_ fileDescriptor: FileDescriptor, events: Events) throws(EpollError) {
        try control(EpollOperation.modify, fileDescriptor.rawValue, events: events)
    }

    /// Replaces the events watched on a registered raw descriptor; see
    /// `modify(_:events:)`.
    public func modify(_ rawFileDescriptor: CInt, events: Events) throws(EpollError) {
        try control(EpollOperation.modify, rawFileDescriptor, events: events)
    }

    /// Stops watching a descriptor. Unregister before closing it: a closed
    /// descriptor can no longer be named to the kernel.
    ///
    /// - Throws: `.closed`; `.invalidValue` for a negative descriptor;
    ///   `.notRegistered`; `.badDescriptor` when the descriptor was already
    ///   closed.
    ///
    /// The corresponding C function is `epoll_ctl(EPOLL_CTL_DEL)`; the Python
    /// name is `epoll.unregister(fd)`.
    public func unregister(_ fileDescriptor: FileDescriptor) throws(EpollError) {
        try control(EpollOperation.delete, fileDescriptor.rawValue, events: [])
    }

    /// Stops watching a raw descriptor; see `unregister(_:)`.
    public func unregister(_ rawFileDescriptor: CInt) throws(EpollError) {
        try control(EpollOperation.delete, rawFileDescriptor, events: [])
    }

    /// Registers `fd` with a 64-bit token in `epoll_data` instead of the
    /// descriptor, for layers (such as the selectors) that tell registrations
    /// apart by generation.
    package func register(_ fd: CInt, events: Events, userData: UInt64) throws(EpollError) {
        try control(EpollOperation.add, fd, events: events, userData: userData)
    }

    /// Changes the events and token of a registration made with `userData`.
    package func modify(_ fd: CInt, events: Events, userData: UInt64) throws(EpollError) {
        try control(EpollOperation.modify, fd, events: events, userData: userData)
    }

    private func control(_ op: CInt, _ fd: CInt, events: Events, userData: UInt64? = nil) throws(EpollError) {
        let epfd = try openDescriptor()
        guard fd >= 0 else { throw .invalidValue("file descriptor cannot be a negative integer (\(fd))") }
        let data = userData ?? UInt64(UInt32(bitPattern: fd))
        if case .failure(let errno) = system_epoll_ctl(epfd, op, fd, events: events.rawValue, data: data) {
            throw EpollError(errno)
        }
    }

    // MARK: Waiting

    /// Waits until at least one registered descriptor is ready, or the
    /// timeout passes, and returns the ready descriptors in the kernel's order.
    ///
    /// - Parameters:
    ///   - timeout: `nil` (or a negative duration, as in Python) waits forever;
    ///     `.zero` returns at once; anything else is rounded **up** to a whole
    ///     millisecond, so `.microseconds(100)` waits at least 1 ms.
    ///   - maxEvents: at most this many events; -1 means Python's default,
    ///     `defaultMaxEvents` (1023).
    /// - Returns: the ready events; empty when the timeout passed.
    /// - Throws: `.closed`; `.invalidValue` for `maxEvents` 0 or below -1;
    ///   `.timeoutTooLarge`; `.badDescriptor` or `.invalidArgument` for an
    ///   adopted descriptor that is not an epoll instance.
    ///
    /// A signal that interrupts the wait (EINTR) never surfaces: the wait
    /// resumes with the time that remains (PEP 475), and returns empty if the
    /// deadline has passed.
    ///
    /// The corresponding C function is `epoll_wait`; the Python name is
    /// `epoll.poll(timeout, maxevents)`.
    public func poll(timeout: Duration? = nil, maxEvents: Int = -1) throws(EpollError) -> [Event] {
        _ = try openDescriptor()
        // CPython checks the timeout before maxevents: a too large timeout wins.
        if case .failure = Syscalls.milliseconds(roundingUp: timeout) { throw .timeoutTooLarge }
        let limit = maxEvents == -1 ? Self.defaultMaxEvents : maxEvents
        guard limit > 0 else { throw .invalidValue("maxevents must be greater than 0, got \(maxEvents)") }
        guard limit <= Int(CInt.max) else { throw .invalidValue("maxevents is too large (\(maxEvents))") }
        let buffer: EventBuffer
        if let scratch, scratch.capacity >= limit {
            buffer = scratch
        } else {
            buffer = EventBuffer(capacity: limit)
            scratch = buffer
        }
        let count = try wait(into: buffer, maxEvents: limit, timeout: timeout)
        return (0..<count).map { buffer[$0] }
    }

    /// Waits like `poll(timeout:maxEvents:)`, but writes the events into a
    /// buffer you own and reuse, and allocates nothing: the form for a loop
    /// that polls thousands of times a second.
    ///
    /// ```swift
    /// let events = Epoll.EventBuffer(capacity: 256)
    /// while running {
    ///     try epoll.poll(into: events, timeout: .milliseconds(100))
    ///     for event in events { handle(event) }
    /// }
    /// ```
    ///
    /// - Returns: how many events were written (also `buffer.count`).
    /// - Throws: as `poll(timeout:maxEvents:)`.
    @discardableResult
    public func poll(into buffer: EventBuffer, timeout: Duration? = nil) throws(EpollError) -> Int {
        try wait(into: buffer, maxEvents: buffer.capacity, timeout: timeout)
    }

    private func wait(into buffer: EventBuffer, maxEvents: Int, timeout: Duration?) throws(EpollError) -> Int {
        let epfd = try openDescriptor()
        let milliseconds: CInt
        switch Syscalls.milliseconds(roundingUp: timeout) {
        case .success(let value): milliseconds = value
        case .failure: throw .timeoutTooLarge
        }
        buffer.count = 0
        switch system_epoll_wait(epfd, buffer.storage, CInt(maxEvents), timeoutMilliseconds: milliseconds) {
        case .success(let count):
            buffer.count = Int(count)
            return Int(count)
        case .failure(let errno):
            throw EpollError(errno)
        }
    }

    /// The descriptor, or `.closed`: every method checks this before any syscall.
    @inline(__always)
    private func openDescriptor() throws(EpollError) -> CInt {
        guard descriptor >= 0 else { throw .closed }
        return descriptor
    }
}
