// Resource limits: reading and setting them, and raising the limit on open
// descriptors as servers do at start. Every call goes through the policy of
// Retry.swift (EINTR retried, errno typed).
import CEpollShim
import SystemPackage

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

/// Raises the soft limit on open descriptors to the hard limit and returns
/// the new soft limit (0 if it cannot be read). Servers do this at start:
/// the default soft limit (often 1024) is far below what the kernel allows.
/// The corresponding C functions are `getrlimit` and `setrlimit(RLIMIT_NOFILE)`.
package func system_setrlimit_raise_nofile() -> UInt64 {
    guard case .success(let limit) = system_getrlimit(ResourceLimit.openFiles) else { return 0 }
    if limit.soft < limit.hard,
        case .success = system_setrlimit(ResourceLimit.openFiles, soft: limit.hard, hard: limit.hard)
    {
        return limit.hard
    }
    return limit.soft
}

/// The resources of `system_getrlimit` and `system_setrlimit`.
package enum ResourceLimit {
    /// `RLIMIT_NOFILE`: one more than the highest descriptor number the process may open.
    package static var openFiles: CInt { CInt(RLIMIT_NOFILE.rawValue) }
}
