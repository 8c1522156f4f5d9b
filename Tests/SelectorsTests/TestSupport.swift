import CEpollShim
import Selectors
import Syscalls
import SystemPackage
import Testing

/// A connected AF_UNIX stream pair, non-blocking and close-on-exec, closed by
/// `closeAll`.
struct Pair {
    let a: FileDescriptor
    let b: FileDescriptor

    init() throws {
        let (x, y) = try system_socketpair(
            AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        ).get()
        a = FileDescriptor(rawValue: x)
        b = FileDescriptor(rawValue: y)
    }

    /// Makes `a` readable.
    func sendToA(_ text: String = "x") throws {
        _ = try text.utf8.withContiguousStorageIfAvailable {
            try system_send(b.rawValue, UnsafeRawBufferPointer($0)).get()
        }
    }

    /// Reads whatever is waiting on `a`.
    func drainA() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        _ = buffer.withUnsafeMutableBytes { system_recv(a.rawValue, $0) }
    }

    func closeAll() {
        _ = system_close(a.rawValue)
        _ = system_close(b.rawValue)
    }
}

/// Moves `fd` to the lowest free number at or above `minimum` (close-on-exec),
/// closing the original.
func renumber(_ fd: FileDescriptor, atLeast minimum: CInt) throws -> FileDescriptor {
    let moved = try system_fcntl(fd.rawValue, F_DUPFD_CLOEXEC, minimum).get()
    _ = system_close(fd.rawValue)
    return FileDescriptor(rawValue: moved)
}

/// A selector of each kind, behind one type so that one suite covers them all.
func makeSelector(_ kind: SelectorKind) throws -> any Selector<String> {
    try kind.makeSelector(of: String.self)
}

/// Two pairs below select's limit whose `a` ends are registered for reading
/// on `selector` as "first" and "second", each with a byte waiting: a batch
/// of two events for the next `select`. The caller closes them.
func twoReadyRegistrations(on selector: any Selector<String>) async throws -> (first: Pair, second: Pair) {
    let first = try await Pair.belowSelectLimit()
    let second = try await Pair.belowSelectLimit()
    do {
        try selector.register(first.a, interest: .read, data: "first")
        try selector.register(second.a, interest: .read, data: "second")
        try first.sendToA()
        try second.sendToA()
    } catch {
        first.closeAll()
        second.closeAll()
        throw error
    }
    return (first, second)
}

/// The (data, ready) pairs of one `select`, sorted by data.
func readyPairs(_ selector: any Selector<String>, timeout: Duration? = .zero) throws -> [String] {
    try selector.select(timeout: timeout).map { "\($0.key.data):\($0.ready)" }.sorted()
}

extension Pair {
    /// A pair whose descriptors are both below select's limit (`FD_SETSIZE`),
    /// so that one test body serves every backend.
    ///
    /// The kernel hands out the lowest free number, so a number of 1024 or
    /// more means that, at that moment, other tests in this process (the
    /// 1,000-client and 2,000-descriptor ones) held every number below it.
    /// They give them back within seconds: wait for that (without blocking a
    /// thread) instead of failing, up to `patience`.
    static func belowSelectLimit(patience: Duration = .seconds(120)) async throws -> Pair {
        let clock = ContinuousClock()
        let deadline = clock.now + patience
        while true {
            let pair = try Pair()
            if pair.a.rawValue < FD_SETSIZE && pair.b.rawValue < FD_SETSIZE { return pair }
            pair.closeAll()
            guard clock.now < deadline else {
                throw SelectorError.descriptorOutOfRange(pair.a, limit: Int(FD_SETSIZE))
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
