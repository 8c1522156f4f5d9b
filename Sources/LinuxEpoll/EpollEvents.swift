import Syscalls

extension Epoll {
    /// A set of epoll event flags: what to watch for when registering, and
    /// what happened when polling. Each member is one `EPOLL*` constant of
    /// `<sys/epoll.h>`, with the same bit.
    ///
    /// Test readiness with `contains`, never with `==`: the kernel reports
    /// combinations such as `[.in, .hup]`, and a comparison with `.in` alone
    /// would miss them (one of the defects of the lesson's original program).
    ///
    /// ```swift
    /// if event.events.contains(.in) { /* read */ }
    /// if !event.events.isDisjoint(with: [.err, .hup]) { /* close */ }
    /// ```
    ///
    /// The Python name of each member is `select.EPOLL` followed by its name in
    /// capitals: `.rdhup` is `select.EPOLLRDHUP`.
    ///
    /// The members are inlinable computed constants, so that testing a flag
    /// in a loop over events compiles to a bit test, with no call.
    public struct Events: OptionSet, Sendable, Hashable, CustomStringConvertible {
        /// The raw bit mask, as the kernel reads and writes it.
        public var rawValue: UInt32

        /// Creates a set from a raw `EPOLL*` bit mask. Bits the kernel does not
        /// know are kept as they are.
        @inlinable
        public init(rawValue: UInt32) {
            self.rawValue = rawValue
        }

        /// Data is available to read (`EPOLLIN`, 0x1; Python `select.EPOLLIN`).
        @inlinable public static var `in`: Events { Events(rawValue: EpollEventBits.in) }
        /// Urgent (out-of-band) data is available to read (`EPOLLPRI`, 0x2).
        @inlinable public static var pri: Events { Events(rawValue: EpollEventBits.pri) }
        /// Writing will not block (`EPOLLOUT`, 0x4).
        @inlinable public static var out: Events { Events(rawValue: EpollEventBits.out) }
        /// An error condition (`EPOLLERR`, 0x8). Always reported, whether
        /// asked for or not.
        @inlinable public static var err: Events { Events(rawValue: EpollEventBits.err) }
        /// Hang-up: both directions are shut or the peer is gone (`EPOLLHUP`,
        /// 0x10). Always reported, whether asked for or not.
        @inlinable public static var hup: Events { Events(rawValue: EpollEventBits.hup) }
        /// Normal data is readable; the same as `.in` for sockets (`EPOLLRDNORM`, 0x40).
        @inlinable public static var rdnorm: Events { Events(rawValue: EpollEventBits.rdnorm) }
        /// Priority band data is readable (`EPOLLRDBAND`, 0x80).
        @inlinable public static var rdband: Events { Events(rawValue: EpollEventBits.rdband) }
        /// Normal data is writable; the same as `.out` for sockets (`EPOLLWRNORM`, 0x100).
        @inlinable public static var wrnorm: Events { Events(rawValue: EpollEventBits.wrnorm) }
        /// Priority data is writable (`EPOLLWRBAND`, 0x200).
        @inlinable public static var wrband: Events { Events(rawValue: EpollEventBits.wrband) }
        /// Unused by Linux; kept because Python exposes it (`EPOLLMSG`, 0x400).
        @inlinable public static var msg: Events { Events(rawValue: EpollEventBits.msg) }
        /// The peer shut down its writing side (`EPOLLRDHUP`, 0x2000): after
        /// the data already received, reads return end of file.
        @inlinable public static var rdhup: Events { Events(rawValue: EpollEventBits.rdhup) }
        /// Exclusive wake-up (`EPOLLEXCLUSIVE`, 1 << 28): when several epoll
        /// instances watch one descriptor, wake only one of them.
        ///
        /// - It is valid in `register` only: any `modify` of an exclusive
        ///   registration fails with `EpollError.invalidArgument`, so
        ///   pausing one (as `TCPListener` does on `EMFILE`) means
        ///   unregistering and registering again.
        /// - Beside it only `.in`, `.out`, `.err`, `.hup`, `.wakeup` and
        ///   `.et` are allowed; with `.rdhup`, `.pri` or `.oneshot`,
        ///   `register` fails with `EpollError.invalidArgument`.
        /// - The kernel wakes the epoll instance that registered *first*
        ///   among those waiting, not the one that waited longest: a listener
        ///   shared by several loops this way, at low load, sends nearly every
        ///   connection to one loop (nginx re-registers its listener
        ///   periodically for this reason). The Reactor's `LoopGroup`
        ///   therefore spreads connections with `SO_REUSEPORT` or one
        ///   accepting loop instead.
        @inlinable public static var exclusive: Events { Events(rawValue: EpollEventBits.exclusive) }
        /// Keep the system awake while the event is pending (`EPOLLWAKEUP`,
        /// 1 << 29). Python lacks it; it needs `CAP_BLOCK_SUSPEND` and is
        /// silently ignored without it.
        @inlinable public static var wakeup: Events { Events(rawValue: EpollEventBits.wakeup) }
        /// Report one event, then disable the descriptor until `modify`
        /// re-arms it (`EPOLLONESHOT`, 1 << 30).
        @inlinable public static var oneshot: Events { Events(rawValue: EpollEventBits.oneshot) }
        /// Edge-triggered (`EPOLLET`, 1 << 31): report a change once, not a
        /// state for as long as it lasts. With it, read (or write) until the
        /// call would block, or no further event comes.
        @inlinable public static var et: Events { Events(rawValue: EpollEventBits.et) }

        /// Python's default mask for `register`: `EPOLLIN | EPOLLPRI | EPOLLOUT`.
        @inlinable public static var `default`: Events { [.in, .pri, .out] }

        private static let names: [(Events, String)] = [
            (.in, "IN"), (.pri, "PRI"), (.out, "OUT"), (.err, "ERR"), (.hup, "HUP"), (.rdnorm, "RDNORM"),
            (.rdband, "RDBAND"), (.wrnorm, "WRNORM"), (.wrband, "WRBAND"), (.msg, "MSG"), (.rdhup, "RDHUP"),
            (.exclusive, "EXCLUSIVE"), (.wakeup, "WAKEUP"), (.oneshot, "ONESHOT"), (.et, "ET"),
        ]

        /// The flags by their C names without the `EPOLL` prefix, joined by
        /// `|`, such as `IN|RDHUP`; unknown bits in hexadecimal; `0` when empty.
        public var description: String {
            var parts: [String] = []
            var rest = rawValue
            for (flag, name) in Self.names where contains(flag) {
                parts.append(name)
                rest &= ~flag.rawValue
            }
            if rest != 0 { parts.append("0x" + String(rest, radix: 16)) }
            return parts.isEmpty ? "0" : parts.joined(separator: "|")
        }
    }
}
