/// What a selector watches a descriptor for, and what it found ready:
/// Python's `selectors.EVENT_READ` and `selectors.EVENT_WRITE`.
///
/// A descriptor in an error or hang-up state is reported as both readable
/// and writable (within what it was registered for), so the handler that
/// next reads or writes sees the failure.
public struct Interest: OptionSet, Sendable, Hashable, CustomStringConvertible {
    /// The raw bits: 1 for read, 2 for write, as in Python.
    public var rawValue: UInt8

    /// Creates a set from its raw bits.
    @inlinable
    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    /// Readable: data, a pending connection, end of file or an error.
    /// Python: `selectors.EVENT_READ`.
    @inlinable public static var read: Interest { Interest(rawValue: 1) }

    /// Writable: room in the send buffer, a finished connect, or an error.
    /// Python: `selectors.EVENT_WRITE`.
    @inlinable public static var write: Interest { Interest(rawValue: 2) }

    /// `read`, `write`, `read|write`, or `none`.
    public var description: String {
        switch (contains(.read), contains(.write)) {
        case (true, true): "read|write"
        case (true, false): "read"
        case (false, true): "write"
        case (false, false): "none"
        }
    }
}
