import Selectors
import SystemPackage

/// Anything an `EventLoop` watches: told what is ready, on the loop's thread.
/// `TCPListener`, `TCPConnection`, the wake-up and the signal pipe are event
/// sources; so can be any descriptor of yours: subclass, override
/// `handle(_:)`, and register with `EventLoopContext.register`.
///
/// A class rather than a protocol so that the loop calls every source the
/// same cheap way: through the class's method table, with the source
/// borrowed from the loop's table, and no retain and release around the
/// call (which Swift cannot avoid for a protocol value).
open class EventSource {
    /// Creates a source; register it to have it called.
    public init() {}

    /// Called by the loop when the source's descriptor is ready for `ready`
    /// (always within the interest it is registered for; errors and hang-ups
    /// arrive as both read and write). Subclasses override it.
    open func handle(_ ready: Interest) {
        preconditionFailure("\(type(of: self)) registered with an event loop does not override handle(_:)")
    }

    /// How the loop's diagnostics name this source in a report (see
    /// `LoopDiagnostics`); the class's name unless overridden.
    open var diagnosticName: String { String(describing: type(of: self)) }
}

/// A source's place in its loop, returned by `EventLoopContext.register` and
/// used to change or end the registration.
///
/// It carries a generation: once its registration has ended, the id is
/// stale, and the loop ignores it (`unregister`) or refuses it
/// (`setInterest` throws `.notRegistered`) even after a new source took the
/// same slot and descriptor number.
public struct SourceID: Hashable, Sendable {
    /// The slot in the loop's source table (the selector's data).
    let slot: Int
    /// Which registration of the slot this is; never 0 for a real one.
    let generation: UInt32
    /// The watched descriptor.
    public let fileDescriptor: FileDescriptor

    /// No registration: a placeholder for a source not (or no longer) registered.
    static let none = SourceID(slot: -1, generation: 0, fileDescriptor: FileDescriptor(rawValue: -1))
}
