import SystemPackage
import Syscalls

/// A kernel counter that is readable while it is non-zero: the cheapest way
/// to wake a thread blocked in `Epoll.poll` from another thread. Always
/// non-blocking and close-on-exec.
///
/// The corresponding C function is `eventfd(2)`; Python has it as
/// `os.eventfd` (3.10+).
public final class EventFD: @unchecked Sendable {
    // Sendable: `read` and `write` on an eventfd are atomic in the kernel, and
    // the descriptor never changes until `close`, which the owner calls once
    // no other thread can still use it.
    private let descriptor: CInt
    private let closed = AtomicFlag()

    /// Creates a counter starting at `initialValue`.
    ///
    /// - Throws: `EpollError.limitReached` when out of descriptors.
    public init(initialValue: UInt32 = 0) throws(EpollError) {
        switch system_eventfd(initialValue, EventFDFlags.nonBlocking | EventFDFlags.closeOnExec) {
        case .success(let fd): descriptor = fd
        case .failure(let errno): throw EpollError(errno)
        }
    }

    deinit {
        close()
    }

    /// The counter's descriptor, to register for `.in` with an `Epoll`.
    public var fileDescriptor: FileDescriptor { FileDescriptor(rawValue: descriptor) }

    /// Adds `value` to the counter, making it readable. Safe from any thread.
    /// Adding to a counter that is already near `UInt64.max - 1` would block,
    /// and is ignored: the counter is readable anyway.
    public func signal(_ value: UInt64 = 1) {
        var value = value
        _ = withUnsafeBytes(of: &value) { system_write(descriptor, $0) }
    }

    /// Reads and resets the counter; `nil` when it was zero.
    public func reset() -> UInt64? {
        var value: UInt64 = 0
        let result = withUnsafeMutableBytes(of: &value) { system_read(descriptor, $0) }
        if case .success(8) = result { return value }
        return nil
    }

    /// Closes the descriptor; later calls do nothing.
    public func close() {
        if closed.set() { _ = system_close(descriptor) }
    }
}
