import SystemPackage

/// Watches many descriptors and reports which are ready: Python's
/// `selectors.BaseSelector`, with `select`, `poll` and `epoll` behind it.
///
/// ```swift
/// let selector = try EpollSelector<String>()
/// try selector.register(listener, interest: .read, data: "listener")
/// for ready in try selector.select(timeout: .seconds(1)) {
///     print(ready.key.data, ready.ready)   // "listener read"
/// }
/// selector.close()
/// ```
///
/// A complete, compiled example: `Snippets/SelectorExample.swift` (`swift run SelectorExample`).
///
/// ## The contract (every backend)
///
/// - `register` fails with `.alreadyRegistered` for a registered descriptor,
///   `.invalidDescriptor` for a negative one, `.invalidInterest` for `[]`.
/// - `modify` and `unregister` fail with `.notRegistered` for an unknown
///   descriptor. A `modify` that changes only `data` makes no syscall.
/// - `unregister` succeeds for a descriptor the caller already closed: the
///   registration is forgotten, and the kernel's complaint (`EBADF`) ignored.
///   Unregister before closing all the same; that is the cheap path.
/// - `select` returns each ready descriptor once, with `ready` within its
///   registered interest. Errors and hang-ups are reported as both `.read`
///   and `.write` (masked by the interest), so the handler sees the failure
///   when it next reads or writes.
/// - `select(timeout:)`: `nil` waits forever, `.zero` does not wait, anything
///   else is rounded up to a whole millisecond. A signal (EINTR) never
///   surfaces: the wait resumes with the time that remains.
/// - `select` may return an empty list before the timeout (a spurious
///   wake-up, or an event for a registration that was just removed). Treat
///   an empty result as "look again", never as "timed out".
/// - An event for a descriptor that was closed and whose number was then
///   reused by a new registration never reaches the new registration.
/// - After `close()` every call fails with `.closed`; `close()` itself may
///   be called again and does nothing.
/// - A selector is confined to one thread.
///
/// The backends differ only in cost and limits. `SelectSelector` pays for
/// every watched descriptor on every call and refuses descriptors numbered
/// 1024 and up; `PollSelector` pays for every watched descriptor but has no
/// such limit; `EpollSelector` pays only for the ready ones.
public protocol Selector<Data>: AnyObject {
    /// The caller's data attached to each registration.
    associatedtype Data

    /// Starts watching `fileDescriptor` for `interest`, with `data` attached.
    /// Python: `selector.register(fileobj, events, data)`.
    @discardableResult
    func register(_ fileDescriptor: FileDescriptor, interest: Interest, data: Data) throws(SelectorError)
        -> SelectorKey<Data>

    /// Changes the interest and data of a registration.
    /// Python: `selector.modify(fileobj, events, data)`.
    @discardableResult
    func modify(_ fileDescriptor: FileDescriptor, interest: Interest, data: Data) throws(SelectorError)
        -> SelectorKey<Data>

    /// Stops watching a descriptor and returns its last key.
    /// Python: `selector.unregister(fileobj)`.
    @discardableResult
    func unregister(_ fileDescriptor: FileDescriptor) throws(SelectorError) -> SelectorKey<Data>

    /// Waits until a descriptor is ready or the timeout passes, and returns
    /// the ready ones. Python: `selector.select(timeout)`.
    ///
    /// The array is reused by the next call: in steady state, a caller that
    /// does not keep it makes `select` allocate nothing.
    func select(timeout: Duration?) throws(SelectorError) -> [ReadyKey<Data>]

    /// Waits like `select(timeout:)` and calls `body` for each ready
    /// registration, looked up at the moment of the call: a registration that
    /// an earlier call of `body` removed or replaced is skipped. This is the
    /// form for an event loop whose handlers open and close descriptors.
    ///
    /// - Returns: how many times `body` was called.
    @discardableResult
    func select(timeout: Duration?, _ body: (SelectorKey<Data>, Interest) throws -> Void) throws -> Int

    /// The registration of `fileDescriptor`, or `nil`.
    /// Python: `selector.get_key(fileobj)` (which raises `KeyError` instead).
    func key(for fileDescriptor: FileDescriptor) -> SelectorKey<Data>?

    /// How many descriptors are registered. Python: `len(selector.get_map())`.
    var registeredCount: Int { get }

    /// Whether `close()` was called.
    var isClosed: Bool { get }

    /// Forgets every registration and releases the backend's descriptor, if
    /// any. Calling it again does nothing. Python: `selector.close()`.
    func close()
}
