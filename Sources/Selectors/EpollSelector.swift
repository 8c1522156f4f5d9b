import LinuxEpoll
import SystemPackage

/// A selector over epoll: registration happens once, and each wait costs
/// what is ready, not what is watched. The default, and the one to use on
/// Linux. Python: `selectors.EpollSelector`.
///
/// Each registration's token carries a generation in `epoll_data`, so an
/// event that the kernel reported for a descriptor closed during the same
/// batch never reaches a new registration that reused its number.
public typealias EpollSelector<Data> = BackendSelector<EpollBackend, Data>

/// The epoll translation of `SelectorBackend`: `.read` is `EPOLLIN`, `.write`
/// is `EPOLLOUT`, level-triggered, up to 1024 events per wait.
public final class EpollBackend: SelectorBackend {
    private let epoll: Epoll
    @usableFromInline let events = Epoll.EventBuffer(capacity: 1024)

    /// Creates the epoll instance.
    public init() throws(SelectorError) {
        do { epoll = try Epoll() } catch { throw SelectorError(error) }
    }

    /// Epoll has no limit of its own.
    public static var descriptorLimit: Int? { nil }

    /// `epoll_ctl(EPOLL_CTL_ADD)` with the token as `epoll_data`.
    public func add(_ fd: CInt, interest: Interest, token: UInt64) throws(SelectorError) {
        do { try epoll.register(fd, events: Self.events(for: interest), userData: token) } catch {
            throw SelectorError(error)
        }
    }

    /// `epoll_ctl(EPOLL_CTL_MOD)` with the token as `epoll_data`.
    public func modify(_ fd: CInt, interest: Interest, token: UInt64) throws(SelectorError) {
        do { try epoll.modify(fd, events: Self.events(for: interest), userData: token) } catch {
            throw SelectorError(error)
        }
    }

    /// `epoll_ctl(EPOLL_CTL_DEL)`.
    public func remove(_ fd: CInt) throws(SelectorError) {
        do { try epoll.unregister(fd) } catch { throw SelectorError(error) }
    }

    /// `epoll_wait` into a reused buffer.
    public func wait(timeout: Duration?) throws(SelectorError) -> Int {
        do { return try epoll.poll(into: events, timeout: timeout) } catch { throw SelectorError(error) }
    }

    /// The token and ready interest of the `index`-th event. Inlinable, so
    /// that a selector specialised for epoll reads the kernel's array directly.
    @inlinable
    public func ready(at index: Int) -> (token: UInt64, interest: Interest) {
        let flags = events.events(at: index)
        var interest: Interest = []
        if !flags.isDisjoint(with: [.in, .pri, .rdhup, .err, .hup]) { interest.insert(.read) }
        if !flags.isDisjoint(with: [.out, .err, .hup]) { interest.insert(.write) }
        return (events.userData(at: index), interest)
    }

    /// The epoll instance's descriptor; `nil` once closed.
    var epollDescriptor: CInt? { try? epoll.fileDescriptor.rawValue }

    /// The kernel's events for `interest`, as `/proc/self/fdinfo` shows
    /// them: epoll always adds `EPOLLERR` and `EPOLLHUP`.
    static func kernelEvents(for interest: Interest) -> UInt32 {
        events(for: interest).union([.err, .hup]).rawValue
    }

    /// Closes the epoll descriptor.
    public func close() {
        epoll.close()
    }

    private static func events(for interest: Interest) -> Epoll.Events {
        var events: Epoll.Events = []
        if interest.contains(.read) { events.insert(.in) }
        if interest.contains(.write) { events.insert(.out) }
        return events
    }
}
