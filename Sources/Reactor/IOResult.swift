/// The outcome of a non-blocking read, write or accept: either it did
/// something, or it would have blocked. "Would block" is the normal state of
/// a non-blocking socket, so it is a value here, never a thrown error.
public enum IOResult<Value> {
    /// The call made progress and produced `Value` (bytes moved, a descriptor).
    case processed(Value)
    /// The call would have blocked (`EAGAIN`/`EWOULDBLOCK`); wait for readiness.
    case wouldBlock
}

extension IOResult: Sendable where Value: Sendable {}
extension IOResult: Equatable where Value: Equatable {}
