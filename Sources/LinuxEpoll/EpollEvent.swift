import SystemPackage
import Syscalls

extension Epoll {
    /// One ready descriptor, as `poll` reports it: Python's `(fd, events)`
    /// tuple.
    public struct Event: Sendable, Hashable, CustomStringConvertible {
        /// The descriptor that is ready.
        public var fileDescriptor: FileDescriptor
        /// What it is ready for; test with `contains`.
        public var events: Events

        /// Creates an event.
        public init(fileDescriptor: FileDescriptor, events: Events) {
            self.fileDescriptor = fileDescriptor
            self.events = events
        }

        /// `(fd, EVENTS)`, as Python would print the tuple but with the flags by name.
        public var description: String { "(\(fileDescriptor.rawValue), \(events))" }
    }

    /// A caller-owned array of kernel events that `poll(into:timeout:)`
    /// fills without allocating: allocate one buffer, reuse it for every
    /// wait. It reads as a collection of `Event`s, valid until the next poll
    /// into the same buffer.
    ///
    /// A buffer is not thread-safe; use one per polling thread.
    public final class EventBuffer: RandomAccessCollection {
        @usableFromInline let storage: EpollEventArray

        /// How many events one poll can return at most (the kernel's `maxevents`).
        public let capacity: Int

        // Written only by a poll, on the one thread that polls into this
        // buffer: no runtime exclusivity check (a thread-local lookup that
        // cost more than the rest of the wait's wrapper together).

        /// How many events the last poll returned.
        @exclusivity(unchecked) public internal(set) var count: Int = 0

        /// Creates a buffer for at most `capacity` events per poll.
        ///
        /// - Precondition: `capacity` is greater than 0.
        public init(capacity: Int) {
            precondition(capacity > 0 && capacity <= Int(CInt.max), "capacity must be in 1...\(CInt.max)")
            self.capacity = capacity
            self.storage = EpollEventArray(capacity: capacity)
        }

        deinit {
            storage.deallocate()
        }

        /// The index of the first event, always 0.
        public var startIndex: Int { 0 }

        /// One past the last event returned by the last poll.
        public var endIndex: Int { count }

        /// The event at `index`.
        public subscript(index: Int) -> Event {
            precondition(index >= 0 && index < count, "index out of range")
            return Event(
                fileDescriptor: FileDescriptor(rawValue: CInt(truncatingIfNeeded: userData(at: index))),
                events: events(at: index)
            )
        }

        /// The 64-bit `epoll_data` of the event at `index`, for layers that
        /// register their own token instead of the descriptor.
        @inlinable
        package func userData(at index: Int) -> UInt64 {
            storage.data(at: index)
        }

        /// The flags of the event at `index`, without building an `Event`.
        @inlinable
        package func events(at index: Int) -> Events {
            Events(rawValue: storage.events(at: index))
        }
    }
}
