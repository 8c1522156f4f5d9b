import LinuxEpoll
import SystemPackage

/// Why a selector call failed; each case names the Python exception that
/// `selectors` raises for it.
public enum SelectorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The selector was closed. Python raises `RuntimeError` or `ValueError`
    /// depending on the backend; here it is always this case.
    case closed

    /// The descriptor is already registered. Python: `KeyError`.
    case alreadyRegistered(FileDescriptor)

    /// The descriptor is not registered. Python: `KeyError`.
    case notRegistered(FileDescriptor)

    /// A negative descriptor. Python: `ValueError("Invalid file descriptor")`.
    case invalidDescriptor(FileDescriptor)

    /// An empty interest: register for `.read`, `.write` or both.
    /// Python: `ValueError("Invalid events")`.
    case invalidInterest

    /// `select(2)` cannot watch this descriptor: its number is not below
    /// `FD_SETSIZE` (1024), the size of an `fd_set`. Use `PollSelector` or
    /// `EpollSelector`. Python: `ValueError("filedescriptor out of range in select()")`.
    case descriptorOutOfRange(FileDescriptor, limit: Int)

    /// The timeout does not fit the kernel's `int` milliseconds.
    /// Python: `OverflowError`.
    case timeoutTooLarge

    /// The kernel refused: the errno says why (`EBADF` for a descriptor
    /// that was closed while registered with `select`, `EPERM` for a regular
    /// file with epoll, `ENOMEM`, ...). Python: `OSError`.
    case system(Errno)

    /// The corresponding errno, for `.system`; `nil` otherwise.
    public var errno: Errno? {
        if case .system(let errno) = self { return errno }
        return nil
    }

    /// A one-line explanation.
    public var description: String {
        switch self {
        case .closed: "the selector is closed"
        case .alreadyRegistered(let fd): "descriptor \(fd.rawValue) is already registered"
        case .notRegistered(let fd): "descriptor \(fd.rawValue) is not registered"
        case .invalidDescriptor(let fd): "invalid file descriptor \(fd.rawValue)"
        case .invalidInterest: "invalid interest: register for .read, .write or both"
        case .descriptorOutOfRange(let fd, let limit):
            "descriptor \(fd.rawValue) is out of range for select(): it handles descriptors below \(limit) only"
        case .timeoutTooLarge: "timeout is too large (more than \(CInt.max) ms)"
        case .system(let errno): "system error: \(errno)"
        }
    }

    /// Maps an `EpollError` from the epoll backend.
    init(_ error: EpollError) {
        switch error {
        case .closed: self = .closed
        case .timeoutTooLarge: self = .timeoutTooLarge
        default: self = .system(error.errno ?? .invalidArgument)
        }
    }
}
