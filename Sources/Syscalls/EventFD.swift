// eventfd: creating the kernel counter and the flags it takes. The counter
// is read and written with `system_read` and `system_write` (Descriptors.swift).
import CEpollShim
import SystemPackage

/// Creates an eventfd counter. The corresponding C function is `eventfd`.
package func system_eventfd(_ initial: CUnsignedInt, _ flags: CInt) -> Result<CInt, Errno> {
    valueOrErrno(.eventfd) { eventfd(initial, flags) }
}

/// The flags of `system_eventfd`.
package enum EventFDFlags {
    /// `EFD_NONBLOCK`: reading a zero counter fails with `EAGAIN` instead of waiting.
    package static var nonBlocking: CInt { CInt(EFD_NONBLOCK) }
    /// `EFD_CLOEXEC`: the descriptor is closed in programs the process starts.
    package static var closeOnExec: CInt { CInt(EFD_CLOEXEC) }
}
