import SystemPackage

/// Why an `Epoll` call failed. Each case a caller can act on is its own case,
/// and each names the Python exception that `select.epoll` raises for it, so
/// that code ported from Python keeps its error handling.
///
/// ```swift
/// do {
///     try epoll.register(socket, events: .in)
/// } catch .alreadyRegistered {
///     try epoll.modify(socket, events: .in)
/// }
/// ```
public enum EpollError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The `Epoll` was closed; checked before any syscall.
    /// Python: `ValueError("I/O operation on closed epoll object")`.
    case closed

    /// An argument was rejected before any syscall: a negative descriptor, a
    /// size hint of 0 or below -1, `maxEvents` of 0 or below -1. The string
    /// says which. Python: `ValueError`.
    case invalidValue(String)

    /// The timeout does not fit the kernel's `int` milliseconds (about 24.8
    /// days). Python: `OverflowError`.
    case timeoutTooLarge

    /// `register` of a descriptor that is already registered (`EEXIST`).
    /// Python: `FileExistsError`.
    case alreadyRegistered

    /// `modify` or `unregister` of a descriptor that is not registered
    /// (`ENOENT`). Python: `FileNotFoundError`.
    case notRegistered

    /// The descriptor is not open (`EBADF`), for instance because it was
    /// closed before `unregister`. Python: `OSError` with `errno.EBADF`.
    case badDescriptor

    /// The descriptor does not support epoll (`EPERM`): a regular file or a
    /// directory. Python: `PermissionError`.
    case unsupportedFile

    /// The kernel rejected the request (`EINVAL`): the epoll descriptor
    /// itself was registered, `.exclusive` was combined with `.oneshot` or
    /// used in `modify`, or the epoll descriptor is not an epoll instance.
    /// Python: `OSError` with `errno.EINVAL`.
    case invalidArgument

    /// A limit was reached: `ENOSPC` (`/proc/sys/fs/epoll/max_user_watches`),
    /// `ENOMEM`, `EMFILE` or `ENFILE` (descriptor limits). The errno says which.
    /// Python: `OSError` with that errno.
    case limitReached(Errno)

    /// Any other errno, kept as it is (for example `ELOOP`, nesting epoll
    /// instances in a cycle). Python: `OSError` with that errno.
    case other(Errno)

    /// Maps an errno from `epoll_create1`, `epoll_ctl` or `epoll_wait`.
    init(_ errno: Errno) {
        switch errno {
        case .fileExists: self = .alreadyRegistered
        case .noSuchFileOrDirectory: self = .notRegistered
        case .badFileDescriptor: self = .badDescriptor
        case .notPermitted: self = .unsupportedFile
        case .invalidArgument: self = .invalidArgument
        case .noSpace, .noMemory, .tooManyOpenFiles, .tooManyOpenFilesInSystem: self = .limitReached(errno)
        default: self = .other(errno)
        }
    }

    /// The errno behind the error, or `nil` for the errors raised before any
    /// syscall (`closed`, `invalidValue`, `timeoutTooLarge`).
    public var errno: Errno? {
        switch self {
        case .closed, .invalidValue, .timeoutTooLarge: nil
        case .alreadyRegistered: .fileExists
        case .notRegistered: .noSuchFileOrDirectory
        case .badDescriptor: .badFileDescriptor
        case .unsupportedFile: .notPermitted
        case .invalidArgument: .invalidArgument
        case .limitReached(let errno), .other(let errno): errno
        }
    }

    /// The name of the exception CPython's `select.epoll` raises for the same
    /// failure: `ValueError`, `OverflowError`, `FileExistsError`,
    /// `FileNotFoundError`, `PermissionError` or `OSError`.
    public var pythonException: String {
        switch self {
        case .closed, .invalidValue: "ValueError"
        case .timeoutTooLarge: "OverflowError"
        case .alreadyRegistered: "FileExistsError"
        case .notRegistered: "FileNotFoundError"
        case .unsupportedFile: "PermissionError"
        case .badDescriptor, .invalidArgument, .limitReached, .other: "OSError"
        }
    }

    /// A one-line explanation, with the errno where there is one.
    public var description: String {
        switch self {
        case .closed: "I/O operation on closed epoll object"
        case .invalidValue(let message): message
        case .timeoutTooLarge: "timeout is too large for epoll_wait (more than \(CInt.max) ms)"
        case .alreadyRegistered: "descriptor is already registered (EEXIST)"
        case .notRegistered: "descriptor is not registered (ENOENT)"
        case .badDescriptor: "bad file descriptor (EBADF)"
        case .unsupportedFile: "descriptor does not support epoll, e.g. a regular file (EPERM)"
        case .invalidArgument: "invalid argument (EINVAL)"
        case .limitReached(let errno): "limit reached: \(errno)"
        case .other(let errno): "epoll failed: \(errno)"
        }
    }
}
