import CEpollShim

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
    public struct Events: OptionSet, Sendable, Hashable, CustomStringConvertible {
        /// The raw bit mask, as the kernel reads and writes it.
        public var rawValue: UInt32

        /// Creates a set from a raw `EPOLL*` bit mask. Bits the kernel does not
        /// know are kept as they are.
        public init(rawValue: UInt32) {
            self.rawValue = rawValue
        }

        /// Data is available to read (`EPOLLIN`, 0x1; Python `select.EPOLLIN`).
        public static let `in` = Events(rawValue: EPOLLIN.rawValue)
        /// Urgent (out-of-band) data is available to read (`EPOLLPRI`, 0x2).
        public static let pri = Events(rawValue: EPOLLPRI.rawValue)
        /// Writing will not block (`EPOLLOUT`, 0x4).
        public static let out = Events(rawValue: EPOLLOUT.rawValue)
        /// An error condition (`EPOLLERR`, 0x8). Always reported, whether
        /// asked for or not.
        public static let err = Events(rawValue: EPOLLERR.rawValue)
        /// Hang-up: both directions are shut or the peer is gone (`EPOLLHUP`,
        /// 0x10). Always reported, whether asked for or not.
        public static let hup = Events(rawValue: EPOLLHUP.rawValue)
        /// Normal data is readable; the same as `.in` for sockets (`EPOLLRDNORM`, 0x40).
        public static let rdnorm = Events(rawValue: EPOLLRDNORM.rawValue)
        /// Priority band data is readable (`EPOLLRDBAND`, 0x80).
        public static let rdband = Events(rawValue: EPOLLRDBAND.rawValue)
        /// Normal data is writable; the same as `.out` for sockets (`EPOLLWRNORM`, 0x100).
        public static let wrnorm = Events(rawValue: EPOLLWRNORM.rawValue)
        /// Priority data is writable (`EPOLLWRBAND`, 0x200).
        public static let wrband = Events(rawValue: EPOLLWRBAND.rawValue)
        /// Unused by Linux; kept because Python exposes it (`EPOLLMSG`, 0x400).
        public static let msg = Events(rawValue: EPOLLMSG.rawValue)
        /// The peer shut down its writing side (`EPOLLRDHUP`, 0x2000): after
        /// the data already received, reads return end of file.
        public static let rdhup = Events(rawValue: EPOLLRDHUP.rawValue)
        /// Exclusive wake-up (`EPOLLEXCLUSIVE`, 1 << 28): when several epoll
        /// instances watch one descriptor, wake only one of them. Valid in
        /// `register` only; `modify` with it, or with `.oneshot`, fails with
        /// `EpollError.invalidArgument`.
        public static let exclusive = Events(rawValue: EPOLLEXCLUSIVE.rawValue)
        /// Keep the system awake while the event is pending (`EPOLLWAKEUP`,
        /// 1 << 29). Python lacks it; it needs `CAP_BLOCK_SUSPEND` and is
        /// silently ignored without it.
        public static let wakeup = Events(rawValue: EPOLLWAKEUP.rawValue)
        /// Report one event, then disable the descriptor until `modify`
        /// re-arms it (`EPOLLONESHOT`, 1 << 30).
        public static let oneshot = Events(rawValue: EPOLLONESHOT.rawValue)
        /// Edge-triggered (`EPOLLET`, 1 << 31): report a change once, not a
        /// state for as long as it lasts. With it, read (or write) until the
        /// call would block, or no further event comes.
        public static let et = Events(rawValue: EPOLLET.rawValue)

        /// Python's default mask for `register`: `EPOLLIN | EPOLLPRI | EPOLLOUT`.
        public static let `default`: Events = [.in, .pri, .out]

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
