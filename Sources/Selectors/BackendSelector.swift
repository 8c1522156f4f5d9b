import SystemPackage

/// The one implementation of the `Selector` contract, over any backend.
/// Use it through its aliases: `EpollSelector`, `PollSelector`,
/// `SelectSelector`.
///
/// It is generic rather than built on an existential, so that a loop over
/// `EpollSelector` compiles down to direct calls into the epoll backend.
public final class BackendSelector<Backend: SelectorBackend, Data>: Selector {
    // Internal rather than private because the inlinable `select(timeout:)` uses them.
    // Used only on the owner's thread, and no access spans a call that could
    // re-enter the selector: no runtime exclusivity check per event.
    @exclusivity(unchecked) @usableFromInline var table = SelectorTable<Data>()
    // A constant, kept after `close()` (its kernel resources released) until
    // the selector goes: a wait whose handler closes the selector can still
    // read the rest of the backend's buffer, and calls need no retain.
    @usableFromInline let backend: Backend
    @exclusivity(unchecked) @usableFromInline var closed = false
    @usableFromInline var readyKeys: [ReadyKey<Data>] = []

    /// Creates a selector and its backend's kernel resources.
    ///
    /// - Throws: `SelectorError.system` when the kernel refuses (out of
    ///   descriptors or memory).
    public init() throws(SelectorError) {
        backend = try Backend()
    }

    deinit {
        if !closed { backend.close() }
    }

    /// See `Selector.isClosed`.
    public var isClosed: Bool { closed }

    /// See `Selector.registeredCount`.
    public var registeredCount: Int { table.count }

    /// See `Selector.register(_:interest:data:)`.
    @discardableResult
    public func register(_ fileDescriptor: FileDescriptor, interest: Interest, data: Data) throws(SelectorError)
        -> SelectorKey<Data>
    {
        try checkOpen()
        let fd = fileDescriptor.rawValue
        try validate(fileDescriptor, interest)
        guard table.key(for: fd) == nil else { throw .alreadyRegistered(fileDescriptor) }
        let key = SelectorKey(fileDescriptor: fileDescriptor, interest: interest, data: data)
        let token = table.insert(key)
        do {
            try backend.add(fd, interest: interest, token: token)
        } catch {
            _ = table.remove(fd)
            throw error
        }
        return key
    }

    /// See `Selector.modify(_:interest:data:)`.
    @discardableResult
    public func modify(_ fileDescriptor: FileDescriptor, interest: Interest, data: Data) throws(SelectorError)
        -> SelectorKey<Data>
    {
        try checkOpen()
        let fd = fileDescriptor.rawValue
        try validate(fileDescriptor, interest)
        guard let old = table.key(for: fd), let token = table.token(for: fd) else {
            throw .notRegistered(fileDescriptor)
        }
        if old.interest != interest {
            try backend.modify(fd, interest: interest, token: token)
        }
        let key = SelectorKey(fileDescriptor: fileDescriptor, interest: interest, data: data)
        table.replace(key)
        return key
    }

    /// See `Selector.unregister(_:)`.
    @discardableResult
    public func unregister(_ fileDescriptor: FileDescriptor) throws(SelectorError) -> SelectorKey<Data> {
        try checkOpen()
        guard let key = table.remove(fileDescriptor.rawValue) else { throw .notRegistered(fileDescriptor) }
        // As in Python: the descriptor may already be closed (EBADF), or its
        // number reused by an unregistered one (ENOENT); either way it is gone
        // from the kernel's set, and the registration is forgotten.
        try? backend.remove(fileDescriptor.rawValue)
        return key
    }

    /// See `Selector.key(for:)`.
    public func key(for fileDescriptor: FileDescriptor) -> SelectorKey<Data>? {
        table.key(for: fileDescriptor.rawValue)
    }

    /// See `Selector.select(timeout:)`.
    ///
    /// Inlinable, so that it is specialized for the caller's `Data` and looks
    /// up no generic metadata at run time.
    @inlinable
    public func select(timeout: Duration?) throws(SelectorError) -> [ReadyKey<Data>] {
        try checkOpen()
        let count = try backend.wait(timeout: timeout)
        // Fill a local array that takes over the last call's storage: one
        // exclusivity check on `readyKeys` instead of one per appended key.
        var keys: [ReadyKey<Data>] = []
        swap(&keys, &readyKeys)
        keys.removeAll(keepingCapacity: true)
        for index in 0..<count {
            let (token, interest) = backend.ready(at: index)
            guard let key = table.key(forToken: token) else { continue }
            let ready = interest.intersection(key.interest)
            if !ready.isEmpty { keys.append(ReadyKey(key: key, ready: ready)) }
        }
        readyKeys = keys
        return keys
    }

    /// See `Selector.select(timeout:_:)`. Inlinable for the same reason as
    /// `select(timeout:)`: an event loop specialised for one backend and data
    /// type then calls the backend directly.
    @inlinable
    @discardableResult
    public func select(timeout: Duration?, _ body: (SelectorKey<Data>, Interest) throws -> Void) throws -> Int {
        try checkOpen()
        let count = try backend.wait(timeout: timeout)
        var calls = 0
        for index in 0..<count {
            // A handler may close the selector, or replace registrations:
            // check and look each one up afresh. (A closed backend's buffer
            // stays readable: the object lives as long as the selector.)
            if closed { break }
            let (token, interest) = backend.ready(at: index)
            guard let key = table.key(forToken: token) else { continue }
            let ready = interest.intersection(key.interest)
            if ready.isEmpty { continue }
            try body(key, ready)
            calls += 1
        }
        return calls
    }

    /// See `Selector.close()`.
    public func close() {
        guard !closed else { return }
        closed = true
        backend.close()
        table.removeAll()
        readyKeys = []
    }

    @inlinable
    func checkOpen() throws(SelectorError) {
        if closed { throw .closed }
    }

    private func validate(_ fileDescriptor: FileDescriptor, _ interest: Interest) throws(SelectorError) {
        guard fileDescriptor.rawValue >= 0 else { throw .invalidDescriptor(fileDescriptor) }
        guard !interest.isEmpty, interest.isSubset(of: [.read, .write]) else { throw .invalidInterest }
        if let limit = Backend.descriptorLimit, Int(fileDescriptor.rawValue) >= limit {
            throw .descriptorOutOfRange(fileDescriptor, limit: limit)
        }
    }
}
