import Syscalls
import SystemPackage

/// A selector over `poll(2)`: no limit on descriptor numbers, but every wait
/// hands the kernel the whole array and scans it afterwards, so its cost
/// grows with what is watched. Python: `selectors.PollSelector`.
public typealias PollSelector<Data> = BackendSelector<PollBackend, Data>

/// The `poll(2)` translation of `SelectorBackend`: a dense `pollfd` array kept
/// in step with the registrations, with a token beside each entry.
public final class PollBackend: SelectorBackend {
    private var descriptors: [PollDescriptor] = []
    private var tokens: [UInt64] = []
    private var positions = DescriptorPositions()
    private var readyTokens: [UInt64] = []
    private var readyInterests: [Interest] = []

    /// Creates an empty backend; `poll` needs no kernel object.
    public init() throws(SelectorError) {}

    /// Only the process's descriptor limit applies.
    public static var descriptorLimit: Int? { nil }

    /// Appends a `pollfd`.
    public func add(_ fd: CInt, interest: Interest, token: UInt64) throws(SelectorError) {
        positions.set(fd, to: descriptors.count)
        descriptors.append(PollDescriptor(fd: fd, events: Self.events(for: interest), revents: 0))
        tokens.append(token)
    }

    /// Rewrites the `pollfd` of `fd`.
    public func modify(_ fd: CInt, interest: Interest, token: UInt64) throws(SelectorError) {
        guard let index = positions.index(of: fd) else { throw .notRegistered(FileDescriptor(rawValue: fd)) }
        descriptors[index].events = Self.events(for: interest)
        tokens[index] = token
    }

    /// Removes the `pollfd` of `fd` (swapping the last one into its place).
    public func remove(_ fd: CInt) throws(SelectorError) {
        guard let index = positions.index(of: fd) else { throw .notRegistered(FileDescriptor(rawValue: fd)) }
        let last = descriptors.count - 1
        if index != last {
            descriptors[index] = descriptors[last]
            tokens[index] = tokens[last]
            positions.set(descriptors[index].fd, to: index)
        }
        descriptors.removeLast()
        tokens.removeLast()
        positions.clear(fd)
    }

    /// `poll` on the whole array, then a scan of it for non-zero `revents`.
    public func wait(timeout: Duration?) throws(SelectorError) -> Int {
        readyTokens.removeAll(keepingCapacity: true)
        readyInterests.removeAll(keepingCapacity: true)
        guard case .success(let milliseconds) = Syscalls.milliseconds(roundingUp: timeout) else {
            throw .timeoutTooLarge
        }
        let result = descriptors.withUnsafeMutableBufferPointer { buffer in
            system_poll(buffer.baseAddress, buffer.count, timeoutMilliseconds: milliseconds)
        }
        switch result {
        case .failure(let errno): throw .system(errno)
        case .success(let count) where count == 0: return 0
        case .success: break
        }
        for index in descriptors.indices where descriptors[index].revents != 0 {
            readyTokens.append(tokens[index])
            readyInterests.append(Self.interest(for: descriptors[index].revents))
        }
        return readyTokens.count
    }

    /// The token and ready interest of the `index`-th ready descriptor.
    public func ready(at index: Int) -> (token: UInt64, interest: Interest) {
        (readyTokens[index], readyInterests[index])
    }

    /// Forgets the array.
    public func close() {
        descriptors = []
        tokens = []
        positions = DescriptorPositions()
    }

    private static func events(for interest: Interest) -> Int16 {
        var events: Int16 = 0
        if interest.contains(.read) { events |= PollEvents.in }
        if interest.contains(.write) { events |= PollEvents.out }
        return events
    }

    private static func interest(for revents: Int16) -> Interest {
        var interest: Interest = []
        let failure = PollEvents.err | PollEvents.hup | PollEvents.nval
        if revents & (PollEvents.in | PollEvents.pri | failure) != 0 { interest.insert(.read) }
        if revents & (PollEvents.out | failure) != 0 { interest.insert(.write) }
        return interest
    }
}
