// Helpers for the Syscalls suites.
import SystemPackage

/// The errno of a failed syscall, or `nil` when it succeeded.
func failure<T>(_ result: Result<T, Errno>) -> Errno? {
    if case .failure(let errno) = result { return errno }
    return nil
}
