import Selectors
import SystemPackage

/// Anything an `EventLoop` watches: told what is ready, on the loop's thread.
/// `TCPListener`, `TCPConnection`, the wake-up and the signal pipe are event
/// sources; so can be any descriptor of yours.
public protocol EventSource: AnyObject {
    /// Called by the loop when the source's descriptor is ready for `ready`
    /// (always within the interest it is registered for; errors and hang-ups
    /// arrive as both read and write).
    func handle(_ ready: Interest)
}

/// A source's place in its loop, returned by `EventLoopContext.register` and
/// used to change or end the registration.
public struct SourceID: Hashable, Sendable {
    /// The slot in the loop's source table (the selector's data).
    let slot: Int
    /// The watched descriptor.
    public let fileDescriptor: FileDescriptor

    /// No registration: a placeholder for a source not (or no longer) registered.
    static let none = SourceID(slot: -1, fileDescriptor: FileDescriptor(rawValue: -1))
}
