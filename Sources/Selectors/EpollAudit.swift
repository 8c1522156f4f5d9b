import LinuxEpoll
import Syscalls
import SystemPackage

/// What `EpollSelector.audit()` found when it compared the selector's
/// table with the kernel's own list of the epoll instance's registrations
/// (`/proc/self/fdinfo/<epoll descriptor>`: one `tfd`, `events`, `data` and
/// `ino` line per registration).
///
/// The table is what the selector believes; the kernel's list is what will
/// be reported. They part when code goes behind the selector's back:
/// a descriptor closed without being unregistered, or `epoll_ctl` called on
/// the selector's epoll descriptor directly.
public struct EpollAudit: Sendable, Equatable, CustomStringConvertible {
    /// One registration on which the table and the kernel disagree.
    public enum Divergence: Sendable, Equatable, CustomStringConvertible {
        /// The table has `fileDescriptor`, the kernel does not: it was
        /// closed without being unregistered, and its file released, so the
        /// kernel dropped it; it will never be reported again.
        case lost(fileDescriptor: CInt, interest: Interest)
        /// The kernel has `fileDescriptor`, the table does not: it was
        /// added with `epoll_ctl` behind the selector's back. Its events
        /// reach the selector, which drops them (no key for them).
        case unknown(fileDescriptor: CInt, events: UInt32)
        /// Both have `fileDescriptor`, but the kernel watches `events`
        /// where the table's interest means `expected`, or holds another
        /// token than the table's: it was changed behind the selector's back.
        case differs(fileDescriptor: CInt, interest: Interest, expected: UInt32, events: UInt32)
        /// Both have `fileDescriptor`, but the kernel's registration is for
        /// a file no longer open at that number: the descriptor was closed
        /// without being unregistered while another descriptor keeps its
        /// file open (so the kernel still reports it), and the number is
        /// free or now names another file.
        case stale(fileDescriptor: CInt)

        /// One line for a log.
        public var description: String {
            switch self {
            case .lost(let fd, let interest):
                return
                    "descriptor \(fd) (\(interest)) is registered, but the kernel dropped it: closed without unregister"
            case .unknown(let fd, let events):
                return "descriptor \(fd) is in the kernel's list (events \(hex(events))) but not registered:"
                    + " added behind the selector's back"
            case .differs(let fd, let interest, let expected, let events):
                return "descriptor \(fd) is registered for \(interest) (events \(hex(expected))), the kernel watches"
                    + " events \(hex(events)) or holds another token: changed behind the selector's back"
            case .stale(let fd):
                return "descriptor \(fd) is registered, but the kernel's registration is for a file no longer open at"
                    + " that number: closed without unregister while another descriptor keeps the file open"
            }
        }
    }

    /// Every disagreement, in descriptor order; empty when the two agree.
    public var divergences: [Divergence]
    /// How many registrations the kernel listed.
    public var kernelCount: Int

    /// Whether the table and the kernel agree.
    public var isClean: Bool { divergences.isEmpty }

    /// `clean (N registrations)`, or each divergence on a line.
    public var description: String {
        isClean
            ? "clean (\(kernelCount) registrations)"
            : divergences.map(\.description).joined(separator: "\n")
    }
}

private func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }

/// One registration as the kernel lists it.
struct KernelRegistration: Equatable {
    var fileDescriptor: CInt
    var events: UInt32
    var data: UInt64
    var inode: UInt64
}

/// Parses the `tfd:` lines of an epoll descriptor's `/proc/self/fdinfo`
/// entry: `tfd: 5 events: 19 data: 5 pos:0 ino:3f4 sdev:8` (numbers after
/// `events`, `data` and `ino` are hexadecimal). Lines that are not `tfd:`
/// lines are skipped; a `tfd:` line it cannot read makes it return `nil`.
func parseEpollFDInfo(_ text: Substring) -> [KernelRegistration]? {
    var found: [KernelRegistration] = []
    for line in text.split(separator: "\n") where line.hasPrefix("tfd:") {
        var fields: [Substring: Substring] = [:]
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        var index = 0
        while index < words.count {
            let word = words[index]
            if word.hasSuffix(":"), index + 1 < words.count {
                fields[word.dropLast()] = words[index + 1]
                index += 2
            } else if let colon = word.firstIndex(of: ":") {
                fields[word[..<colon]] = word[word.index(after: colon)...]
                index += 1
            } else {
                index += 1
            }
        }
        guard let fd = fields["tfd"].flatMap({ CInt($0) }),
            let events = fields["events"].flatMap({ UInt32($0, radix: 16) }),
            let data = fields["data"].flatMap({ UInt64($0, radix: 16) })
        else { return nil }
        let inode = fields["ino"].flatMap { UInt64($0, radix: 16) } ?? 0
        found.append(KernelRegistration(fileDescriptor: fd, events: events, data: data, inode: inode))
    }
    return found
}

extension BackendSelector where Backend == EpollBackend {
    /// Compares the selector's table with the kernel's list of the epoll
    /// instance's registrations, and returns where they disagree (see
    /// `EpollAudit.Divergence`). Call it on the selector's thread; it reads
    /// one `/proc` file and calls `fstat` once per registration, so it is
    /// for a periodic check (`upper-echo --diagnose` runs it every second),
    /// not for every iteration.
    ///
    /// - Throws: `SelectorError.closed` once closed; `.system` when the
    ///   `/proc` entry cannot be read or parsed (no `/proc` mounted).
    public func audit() throws(SelectorError) -> EpollAudit {
        try checkOpen()
        guard let epfd = backend.epollDescriptor else { throw .closed }
        guard let bytes = system_read_file("/proc/self/fdinfo/\(epfd)"),
            let kernel = parseEpollFDInfo(Substring(decoding: bytes, as: UTF8.self))
        else { throw .system(.noSuchFileOrDirectory) }
        var divergences: [EpollAudit.Divergence] = []
        var listed = Set<CInt>()
        for entry in kernel {
            listed.insert(entry.fileDescriptor)
            guard let key = table.key(for: entry.fileDescriptor), let token = table.token(for: entry.fileDescriptor)
            else {
                divergences.append(.unknown(fileDescriptor: entry.fileDescriptor, events: entry.events))
                continue
            }
            let expected = EpollBackend.kernelEvents(for: key.interest)
            if entry.events != expected || entry.data != token {
                divergences.append(
                    .differs(
                        fileDescriptor: entry.fileDescriptor, interest: key.interest, expected: expected,
                        events: entry.events))
            } else if case .success(let inode) = system_inode(entry.fileDescriptor), inode == entry.inode {
                continue
            } else {
                divergences.append(.stale(fileDescriptor: entry.fileDescriptor))
            }
        }
        for slot in table.slots {
            guard let key = slot?.key, !listed.contains(key.fileDescriptor.rawValue) else { continue }
            divergences.append(.lost(fileDescriptor: key.fileDescriptor.rawValue, interest: key.interest))
        }
        divergences.sort { $0.fileDescriptor < $1.fileDescriptor }
        return EpollAudit(divergences: divergences, kernelCount: kernel.count)
    }
}

extension EpollAudit.Divergence {
    /// The descriptor the divergence is about.
    public var fileDescriptor: CInt {
        switch self {
        case .lost(let fd, _), .unknown(let fd, _), .differs(let fd, _, _, _), .stale(let fd): return fd
        }
    }
}
