/// The three selector backends by name, for a command-line flag or a
/// configuration file: `epoll`, `poll`, `select`.
public enum SelectorKind: String, CaseIterable, Sendable, CustomStringConvertible {
    /// `EpollSelector`: the default; cost follows what is ready.
    case epoll
    /// `PollSelector`: cost follows what is watched; no descriptor limit.
    case poll
    /// `SelectSelector`: cost follows what is watched; descriptors below 1024 only.
    case select

    /// The default backend, `epoll`.
    public static let `default` = SelectorKind.epoll

    /// The backend's name, as accepted by `init(rawValue:)`.
    public var description: String { rawValue }

    /// Creates a selector of this kind, as an existential. A loop that cares
    /// about the last nanosecond should be generic over the concrete type
    /// instead, such as `EpollSelector<Data>`.
    public func makeSelector<Data>(of _: Data.Type = Data.self) throws(SelectorError) -> any Selector<Data> {
        switch self {
        case .epoll: try EpollSelector<Data>()
        case .poll: try PollSelector<Data>()
        case .select: try SelectSelector<Data>()
        }
    }
}
