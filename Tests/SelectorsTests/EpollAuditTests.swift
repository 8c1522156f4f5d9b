import CEpollShim
import Glibc
import LinuxEpoll
import Syscalls
import SystemPackage
import Testing

@testable import Selectors

/// The selector's epoll descriptor, for going behind its back.
private func epollDescriptor(_ selector: EpollSelector<Int>) throws -> CInt {
    try #require(selector.backend.epollDescriptor)
}

@Suite("EpollSelector.audit: the selector's table against the kernel's own list")
struct EpollAuditTests {
    @Test("fdinfo's tfd lines are read, hexadecimal where the kernel prints hexadecimal")
    func parsesFDInfo() throws {
        let text = """
            pos:\t0
            flags:\t02000002
            mnt_id:\t17
            ino:\t1038
            tfd:        4 events:       1d data:        100000004  pos:0 ino:443c72f sdev:9
            tfd:       12 events:       19 data:                c  pos:0 ino:1a sdev:9

            """
        let parsed = try #require(parseEpollFDInfo(Substring(text)))
        #expect(
            parsed == [
                KernelRegistration(fileDescriptor: 4, events: 0x1d, data: 0x1_0000_0004, inode: 0x443c72f),
                KernelRegistration(fileDescriptor: 12, events: 0x19, data: 0xc, inode: 0x1a),
            ])
        #expect(parseEpollFDInfo("tfd: x events: 1 data: 2") == nil)
    }

    @Test("a selector used only through its API agrees with the kernel")
    func healthyIsClean() throws {
        let selector = try EpollSelector<Int>()
        defer { selector.close() }
        let pairs = try (0..<4).map { _ in try Pair() }
        defer { for pair in pairs { pair.closeAll() } }
        try selector.register(pairs[0].a, interest: .read, data: 0)
        try selector.register(pairs[1].a, interest: .write, data: 1)
        try selector.register(pairs[2].a, interest: [.read, .write], data: 2)
        try selector.register(pairs[3].a, interest: .read, data: 3)
        try selector.modify(pairs[3].a, interest: .write, data: 3)
        try selector.unregister(pairs[2].a)
        let audit = try selector.audit()
        #expect(audit.isClean, "\(audit)")
        #expect(audit.kernelCount == 3)
        #expect("\(audit)" == "clean (3 registrations)")
    }

    @Test("a descriptor closed without unregister is lost to the kernel")
    func closedIsLost() throws {
        let selector = try EpollSelector<Int>()
        defer { selector.close() }
        let pair = try Pair()
        defer { _ = system_close(pair.b.rawValue) }
        try selector.register(pair.a, interest: .read, data: 0)
        _ = system_close(pair.a.rawValue)
        let audit = try selector.audit()
        #expect(audit.divergences == [.lost(fileDescriptor: pair.a.rawValue, interest: .read)])
        #expect("\(audit)".contains("closed without unregister"))
    }

    @Test("a descriptor closed without unregister while a duplicate keeps its file open is stale")
    func duplicatedIsStale() throws {
        let selector = try EpollSelector<Int>()
        defer { selector.close() }
        let pair = try Pair()
        let duplicate = dup(pair.a.rawValue)
        try #require(duplicate >= 0)
        defer {
            _ = system_close(duplicate)
            _ = system_close(pair.b.rawValue)
        }
        try selector.register(pair.a, interest: .read, data: 0)
        _ = system_close(pair.a.rawValue)
        #expect(try selector.audit().divergences == [.stale(fileDescriptor: pair.a.rawValue)])
    }

    @Test("a registration added with raw epoll_ctl is unknown; one changed with raw epoll_ctl differs")
    func behindTheBack() throws {
        let selector = try EpollSelector<Int>()
        defer { selector.close() }
        let added = try Pair()
        let changed = try Pair()
        defer {
            added.closeAll()
            changed.closeAll()
        }
        try selector.register(changed.a, interest: .read, data: 0)
        let epfd = try epollDescriptor(selector)
        try system_epoll_ctl(epfd, EPOLL_CTL_ADD, added.a.rawValue, events: UInt32(EPOLLIN.rawValue), data: 99).get()
        try system_epoll_ctl(
            epfd, EPOLL_CTL_MOD, changed.a.rawValue, events: UInt32(EPOLLOUT.rawValue), data: 0
        ).get()
        let audit = try selector.audit()
        let err = UInt32(EPOLLERR.rawValue) | UInt32(EPOLLHUP.rawValue)
        let expected: [EpollAudit.Divergence] = [
            .unknown(fileDescriptor: added.a.rawValue, events: UInt32(EPOLLIN.rawValue) | err),
            .differs(
                fileDescriptor: changed.a.rawValue, interest: .read, expected: UInt32(EPOLLIN.rawValue) | err,
                events: UInt32(EPOLLOUT.rawValue) | err),
        ].sorted { $0.fileDescriptor < $1.fileDescriptor }
        #expect(audit.divergences == expected, "\(audit)")
    }

    @Test("a closed selector refuses to audit")
    func closedSelectorThrows() throws {
        let selector = try EpollSelector<Int>()
        selector.close()
        #expect(throws: SelectorError.closed) { try selector.audit() }
    }
}
