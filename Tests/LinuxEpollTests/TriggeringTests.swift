// What the kernel reports and when, as Python's select.epoll passes it on:
// level and edge triggering, ONESHOT, RDHUP, HUP with an empty
// mask, descriptors above 1024, and nested epolls.
import CEpollShim
import LinuxEpoll
import SystemPackage
import Syscalls
import Testing

@Suite("Triggering")
struct TriggeringTests {
    @Test("level-triggered (the default) reports IN again after a partial read")
    func levelTriggeredRepeats() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        try epoll.register(a, events: .in)
        try writeText(b, "0123456789")
        #expect(byDescriptor(try epoll.poll(timeout: .zero)) == [a: .in])
        #expect(byDescriptor(try epoll.poll(timeout: .zero)) == [a: .in])  // nothing read yet: reported again
        #expect(try readBytes(a, upTo: 5) == 5)
        #expect(byDescriptor(try epoll.poll(timeout: .zero)) == [a: .in])
        #expect(try readBytes(a, upTo: 5) == 5)
        #expect(try epoll.poll(timeout: .zero).isEmpty)
    }

    @Test("ET reports nothing after a partial read until more data arrives")
    func edgeTriggeredPartialRead() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        try epoll.register(a, events: [.in, .et])
        try writeText(b, "0123456789")
        #expect(byDescriptor(try epoll.poll(timeout: .zero)) == [a: .in])
        #expect(try readBytes(a, upTo: 5) == 5)
        #expect(try epoll.poll(timeout: .zero).isEmpty)  // 5 bytes still buffered, but no new edge
        try writeText(b, "more")
        #expect(byDescriptor(try epoll.poll(timeout: .zero)) == [a: .in])
        #expect(try epoll.poll(timeout: .zero).isEmpty)
    }

    @Test("ONESHOT reports once, then nothing, then again after modify re-arms it")
    func oneshotRearm() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        try epoll.register(a, events: [.in, .oneshot])
        try writeText(b, "x")
        #expect(byDescriptor(try epoll.poll(timeout: .zero)) == [a: .in])
        #expect(try epoll.poll(timeout: .zero).isEmpty)  // still readable, but disarmed
        try writeText(b, "y")
        #expect(try epoll.poll(timeout: .zero).isEmpty)  // new data does not re-arm it either
        try epoll.modify(a, events: [.in, .oneshot])
        #expect(byDescriptor(try epoll.poll(timeout: .zero)) == [a: .in])
        #expect(try epoll.poll(timeout: .zero).isEmpty)
    }

    @Test("a TCP peer's shutdown(SHUT_WR) with RDHUP gives exactly IN|RDHUP (0x2001) over 127.0.0.1")
    func rdhupTCP() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (client, server) = try makeTCPConnection()
        defer { closeAll(client, server) }
        try epoll.register(server, events: [.in, .rdhup])
        #expect(try epoll.poll(timeout: .zero).isEmpty)
        try system_shutdown(client, CInt(SHUT_WR)).get()
        let events = try epoll.poll(timeout: .seconds(30))
        #expect(events.map(\.fileDescriptor.rawValue) == [server])
        #expect(events.first?.events.rawValue == 0x2001)
        #expect(events.first?.events == [.in, .rdhup])
    }

    @Test("an AF_UNIX stream peer's shutdown(SHUT_WR) with RDHUP gives exactly IN|RDHUP (0x2001)")
    func rdhupUnix() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        try epoll.register(a, events: [.in, .rdhup])
        try system_shutdown(b, CInt(SHUT_WR)).get()
        let events = try epoll.poll(timeout: .seconds(30))
        #expect(events.map(\.fileDescriptor.rawValue) == [a])
        #expect(events.first?.events.rawValue == 0x2001)
    }

    @Test("without RDHUP in the mask, a peer's shutdown(SHUT_WR) reports IN alone")
    func shutdownWithoutRdhup() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        try epoll.register(a, events: .in)
        try system_shutdown(b, CInt(SHUT_WR)).get()
        #expect(byDescriptor(try epoll.poll(timeout: .seconds(30))) == [a: .in])
    }

    @Test("mask 0 still reports HUP when the peer closes")
    func emptyMaskReportsHangUp() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a) }
        try epoll.register(a, events: [])
        try writeText(b, "ignored")
        #expect(try epoll.poll(timeout: .zero).isEmpty)  // IN was not asked for
        closeAll(b)
        let events = try epoll.poll(timeout: .seconds(30))
        #expect(events.map(\.fileDescriptor.rawValue) == [a])
        #expect(events.first?.events.contains(.hup) == true)
        #expect(events.first?.events.contains(.in) == false)
    }

    @Test("modify to mask 0 still reports HUP (a pipe whose writer closed)")
    func modifyEmptyMaskReportsHangUp() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let pipe = try makePipe()
        defer { closeAll(pipe.read) }
        try epoll.register(pipe.read, events: .in)
        try epoll.modify(pipe.read, events: [])
        closeAll(pipe.write)
        #expect(byDescriptor(try epoll.poll(timeout: .seconds(30))) == [pipe.read: .hup])
    }

    @Test("ERR is reported with mask 0: a pipe's writer whose reader closed")
    func emptyMaskReportsError() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let pipe = try makePipe()
        defer { closeAll(pipe.write) }
        try epoll.register(pipe.write, events: [])
        closeAll(pipe.read)
        #expect(byDescriptor(try epoll.poll(timeout: .seconds(30))) == [pipe.write: .err])
    }

    @Test("OUT is reported on a fresh socket")
    func outOnFreshSocket() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        let (client, server) = try makeTCPConnection()
        defer { closeAll(a, b, client, server) }
        try epoll.register(a, events: .out)
        try epoll.register(client, events: [.in, .out])
        #expect(byDescriptor(try epoll.poll(timeout: .seconds(30))) == [a: .out, client: .out])
    }

    @Test("epoll takes a descriptor numbered 1500 and more (select's 1024 limit does not apply)")
    func descriptorAbove1024() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(b) }
        let high = try moveAbove(a, floor: 1500)
        defer { closeAll(high) }
        #expect(high >= 1500)
        try epoll.register(high, events: .in)
        try writeText(b, "x")
        let events = try epoll.poll(timeout: .seconds(30))
        #expect(events == [Epoll.Event(fileDescriptor: FileDescriptor(rawValue: high), events: .in)])
    }

    @Test("nested epoll: the outer reports IN for the inner when the inner has something ready")
    func nestedEpoll() throws {
        let outer = try Epoll()
        let inner = try Epoll()
        defer { outer.close(); inner.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        try inner.register(a, events: .in)
        let innerFD = try inner.fileDescriptor
        try outer.register(innerFD, events: .in)
        #expect(try outer.poll(timeout: .zero).isEmpty)
        try writeText(b, "x")
        let events = try outer.poll(timeout: .seconds(30))
        #expect(events == [Epoll.Event(fileDescriptor: innerFD, events: .in)])
        #expect(byDescriptor(try inner.poll(timeout: .zero)) == [a: .in])
    }
}
