import SystemPackage

/// A registration: the descriptor, what it is watched for, and the data the
/// caller attached to it. Python: `selectors.SelectorKey`.
public struct SelectorKey<Data> {
    /// The registered descriptor. Python: `key.fd` (and `key.fileobj`).
    public let fileDescriptor: FileDescriptor
    /// What the descriptor is watched for. Python: `key.events`.
    public let interest: Interest
    /// The caller's data, returned with every event. Python: `key.data`.
    public let data: Data

    /// Creates a key.
    public init(fileDescriptor: FileDescriptor, interest: Interest, data: Data) {
        self.fileDescriptor = fileDescriptor
        self.interest = interest
        self.data = data
    }
}

extension SelectorKey: Sendable where Data: Sendable {}

/// One ready descriptor from `Selector.select`: its key, and which of the
/// registered interests are ready now. Python: the `(key, events)` pair.
public struct ReadyKey<Data> {
    /// The registration that is ready.
    public let key: SelectorKey<Data>
    /// What is ready, always within `key.interest`.
    public let ready: Interest

    /// Creates a ready key.
    public init(key: SelectorKey<Data>, ready: Interest) {
        self.key = key
        self.ready = ready
    }
}

extension ReadyKey: Sendable where Data: Sendable {}
