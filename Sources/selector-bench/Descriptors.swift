// The watched descriptors: eventfds, one descriptor each, so that 19,000 of
// them fit under a limit of 20,000 (pipes or socket pairs would need two).
import SystemPackage
import Syscalls

/// The process's `RLIMIT_NOFILE`, and how many descriptors a point may watch.
struct DescriptorLimit {
    /// The soft limit in force (after raising it to the hard one, if allowed).
    var soft: Int
    /// The hard limit.
    var hard: Int
    /// The lowest free descriptor number at start: everything below is in use.
    var firstFree: Int

    /// Descriptors a point needs besides the watched ones: the selector's
    /// epoll and the raw epoll.
    static let reserve = 2

    /// The largest N whose eventfds and epoll instances fit under the soft limit.
    var reachable: Int { max(0, soft - firstFree - Self.reserve) }

    /// Raises the soft limit to the hard limit and reads what is in use.
    /// Returns a line to print if raising failed.
    static func raise() throws(BenchError) -> (limit: DescriptorLimit, warning: String?) {
        let resource = ResourceLimit.openFiles
        let (soft, hard): (UInt64, UInt64)
        switch system_getrlimit(resource) {
        case .success(let limits): (soft, hard) = limits
        case .failure(let errno): throw .system("getrlimit(RLIMIT_NOFILE)", errno)
        }
        var inForce = soft
        var warning: String?
        if soft < hard {
            switch system_setrlimit(resource, soft: hard, hard: hard) {
            case .success: inForce = hard
            case .failure(let errno): warning = "could not raise RLIMIT_NOFILE from \(soft) to \(hard): \(errno)"
            }
        }
        let probe: CInt
        switch system_eventfd(0, EventFDFlags.closeOnExec) {
        case .success(let fd): probe = fd
        case .failure(let errno): throw .system("eventfd", errno)
        }
        _ = system_close(probe)
        let limit = DescriptorLimit(soft: clamp(inForce), hard: clamp(hard), firstFree: Int(probe))
        return (limit, warning)
    }

    /// `RLIM_INFINITY` and other huge values as `Int.max`.
    private static func clamp(_ value: UInt64) -> Int {
        value > UInt64(Int.max) ? Int.max : Int(value)
    }
}

/// N non-blocking eventfds, of which K (spread evenly) hold a count of 1 and
/// so stay readable, level-triggered, for as long as nobody reads them.
final class WatchedDescriptors {
    /// Every watched descriptor, in creation order.
    private(set) var all: [CInt] = []
    /// The readable ones, sorted.
    private(set) var ready: [CInt] = []

    /// Creates `count` eventfds and makes `readyCount` of them readable.
    ///
    /// - Throws: `.system` when the kernel refuses (typically `EMFILE`);
    ///   whatever was created is closed.
    init(count: Int, readyCount: Int) throws(BenchError) {
        precondition(readyCount <= count, "more ready than watched")
        all.reserveCapacity(count)
        for index in 0..<count {
            switch system_eventfd(0, EventFDFlags.nonBlocking | EventFDFlags.closeOnExec) {
            case .success(let fd): all.append(fd)
            case .failure(let errno):
                close()
                throw .system("eventfd #\(index + 1) of \(count)", errno)
            }
        }
        for slot in 0..<readyCount {
            let fd = all[slot * count / readyCount]
            var one: UInt64 = 1
            let written = withUnsafeBytes(of: &one) { system_write(fd, $0) }
            guard case .success(8) = written else {
                close()
                throw .system("write to eventfd \(fd)", written.errnoOrInvalid)
            }
            ready.append(fd)
        }
        ready.sort()
    }

    deinit {
        close()
    }

    /// The highest descriptor number watched.
    var highest: CInt { all.max() ?? -1 }

    /// Closes every eventfd; calling it again does nothing.
    func close() {
        for fd in all { _ = system_close(fd) }
        all = []
        ready = []
    }
}

extension Result where Failure == Errno {
    /// The errno of a failure, or `EINVAL` for a success that was not the one
    /// expected (a short write).
    fileprivate var errnoOrInvalid: Errno {
        if case .failure(let errno) = self { return errno }
        return .invalidArgument
    }
}
