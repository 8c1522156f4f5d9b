import Syscalls
import SystemPackage

/// A selector over `select(2)`: the lesson's "before" picture. Every wait
/// rebuilds the descriptor sets, and the kernel and this backend both scan
/// every watched descriptor, so the cost grows with what is watched; and an
/// `fd_set` holds only descriptors numbered below `FD_SETSIZE` (1024), so
/// registering descriptor 1024 or above fails with
/// `SelectorError.descriptorOutOfRange`. Python: `selectors.SelectSelector`.
public typealias SelectSelector<Data> = BackendSelector<SelectBackend, Data>

/// The `select(2)` translation of `SelectorBackend`.
public final class SelectBackend: SelectorBackend {
    private struct Entry {
        var fd: CInt
        var interest: Interest
        var token: UInt64
    }

    private var entries: [Entry] = []
    private var positions = DescriptorPositions()
    private let readSet = DescriptorSet()
    private let writeSet = DescriptorSet()
    private let exceptSet = DescriptorSet()
    private var readyTokens: [UInt64] = []
    private var readyInterests: [Interest] = []

    /// Creates an empty backend; `select` needs no kernel object.
    public init() throws(SelectorError) {}

    /// `FD_SETSIZE` (1024).
    public static var descriptorLimit: Int? { DescriptorSet.capacity }

    /// Appends an entry.
    public func add(_ fd: CInt, interest: Interest, token: UInt64) throws(SelectorError) {
        positions.set(fd, to: entries.count)
        entries.append(Entry(fd: fd, interest: interest, token: token))
    }

    /// Rewrites the entry of `fd`.
    public func modify(_ fd: CInt, interest: Interest, token: UInt64) throws(SelectorError) {
        guard let index = positions.index(of: fd) else { throw .notRegistered(FileDescriptor(rawValue: fd)) }
        entries[index].interest = interest
        entries[index].token = token
    }

    /// Removes the entry of `fd` (swapping the last one into its place).
    public func remove(_ fd: CInt) throws(SelectorError) {
        guard let index = positions.index(of: fd) else { throw .notRegistered(FileDescriptor(rawValue: fd)) }
        let last = entries.count - 1
        if index != last {
            entries[index] = entries[last]
            positions.set(entries[index].fd, to: index)
        }
        entries.removeLast()
        positions.clear(fd)
    }

    /// Rebuilds the sets, `select`s, then tests every entry with `FD_ISSET`.
    public func wait(timeout: Duration?) throws(SelectorError) -> Int {
        readyTokens.removeAll(keepingCapacity: true)
        readyInterests.removeAll(keepingCapacity: true)
        guard case .success(let milliseconds) = Syscalls.milliseconds(roundingUp: timeout) else {
            throw .timeoutTooLarge
        }
        let result = system_select(
            readSet, writeSet, exceptSet, timeoutMilliseconds: milliseconds
        ) {
            readSet.removeAll()
            writeSet.removeAll()
            exceptSet.removeAll()
            var highest: CInt = -1
            for entry in entries {
                if entry.interest.contains(.read) { readSet.insert(entry.fd) }
                if entry.interest.contains(.write) { writeSet.insert(entry.fd) }
                highest = max(highest, entry.fd)
            }
            return highest + 1
        }
        switch result {
        case .failure(let errno): throw .system(errno)
        case .success(let count) where count == 0: return 0
        case .success: break
        }
        for entry in entries {
            var interest: Interest = []
            if entry.interest.contains(.read) && readSet.contains(entry.fd) { interest.insert(.read) }
            if entry.interest.contains(.write) && writeSet.contains(entry.fd) { interest.insert(.write) }
            if !interest.isEmpty {
                readyTokens.append(entry.token)
                readyInterests.append(interest)
            }
        }
        return readyTokens.count
    }

    /// The token and ready interest of the `index`-th ready descriptor.
    public func ready(at index: Int) -> (token: UInt64, interest: Interest) {
        (readyTokens[index], readyInterests[index])
    }

    /// Forgets the entries.
    public func close() {
        entries = []
        positions = DescriptorPositions()
    }
}
