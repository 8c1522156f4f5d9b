import SystemPackage

/// What a kernel interface must do to serve as a selector: translate, and
/// nothing more. The bookkeeping (keys, data, generations, the contract's
/// checks) lives once, in `BackendSelector`.
///
/// You need this protocol only to add a backend; to use a selector, take
/// `EpollSelector`, `PollSelector` or `SelectSelector`.
public protocol SelectorBackend: AnyObject {
    /// Acquires the kernel resources (for epoll, the epoll descriptor).
    init() throws(SelectorError)

    /// The highest descriptor number plus one that the backend can watch, or
    /// `nil` when only the process's descriptor limit applies.
    static var descriptorLimit: Int? { get }

    /// Starts watching `fd` for `interest`; `token` comes back with its events.
    func add(_ fd: CInt, interest: Interest, token: UInt64) throws(SelectorError)

    /// Changes the interest and token of a watched descriptor.
    func modify(_ fd: CInt, interest: Interest, token: UInt64) throws(SelectorError)

    /// Stops watching `fd`. May fail with `EBADF` if it was closed first; the
    /// selector ignores that.
    func remove(_ fd: CInt) throws(SelectorError)

    /// Waits, then records what is ready; returns how many entries
    /// `ready(at:)` now holds. The entries stay valid until the next `wait`,
    /// whatever `add`, `modify` and `remove` do meanwhile.
    func wait(timeout: Duration?) throws(SelectorError) -> Int

    /// The token and the ready interest (errors and hang-ups as both read and
    /// write) of the `index`-th ready entry of the last `wait`.
    func ready(at index: Int) -> (token: UInt64, interest: Interest)

    /// Releases the kernel resources. Called once.
    func close()
}

/// Where each registered descriptor sits in a backend's dense array, so that
/// removal is O(1) (swap with the last, pop).
struct DescriptorPositions {
    private var positions: [Int32] = []

    /// The index of `fd` in the dense array, if it is there.
    func index(of fd: CInt) -> Int? {
        guard fd >= 0, Int(fd) < positions.count, positions[Int(fd)] >= 0 else { return nil }
        return Int(positions[Int(fd)])
    }

    /// Records that `fd` sits at `index`.
    mutating func set(_ fd: CInt, to index: Int) {
        if Int(fd) >= positions.count {
            positions.append(
                contentsOf: repeatElement(-1, count: max(Int(fd) + 1, positions.count * 2) - positions.count))
        }
        positions[Int(fd)] = Int32(index)
    }

    /// Forgets `fd`.
    mutating func clear(_ fd: CInt) {
        if Int(fd) < positions.count { positions[Int(fd)] = -1 }
    }
}
