// The paths that succeed, one while another thread polls: register,
// modify and unregister against the real kernel. The failures are in
// ErrorMappingTests.swift.
import CEpollShim
import Foundation
import LinuxEpoll
import SystemPackage
import Syscalls
import Testing

@Suite("Registration")
struct RegistrationTests {
    @Test("register: the default mask is IN|PRI|OUT (a readable, writable eventfd reports IN|OUT)")
    func registerDefaultMask() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let fd = try makeEventFD(initial: 1)
        defer { closeAll(fd) }
        try epoll.register(fd)
        let events = try epoll.poll(timeout: .zero)
        #expect(events == [Epoll.Event(fileDescriptor: FileDescriptor(rawValue: fd), events: [.in, .out])])
    }

    @Test("register: only the requested events are reported")
    func registerRequestedOnly() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let fd = try makeEventFD(initial: 1)
        defer { closeAll(fd) }
        try epoll.register(FileDescriptor(rawValue: fd), events: .in)
        #expect(byDescriptor(try epoll.poll(timeout: .zero)) == [fd: .in])
    }

    @Test("register with userData: the token comes back instead of the descriptor")
    func registerUserData() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let fd = try makeEventFD(initial: 1)
        defer { closeAll(fd) }
        try epoll.register(fd, events: .in, userData: 0xABCD_0000_0042)
        let buffer = Epoll.EventBuffer(capacity: 2)
        #expect(try epoll.poll(into: buffer, timeout: .zero) == 1)
        #expect(buffer.userData(at: 0) == 0xABCD_0000_0042)
        try epoll.modify(fd, events: .in, userData: 9)
        try epoll.poll(into: buffer, timeout: .zero)
        #expect(buffer.userData(at: 0) == 9)
    }

    @Test("modify replaces the watched events")
    func modifyReplacesEvents() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        try epoll.register(a, events: .in)
        #expect(try epoll.poll(timeout: .zero).isEmpty)  // nothing to read yet
        try epoll.modify(a, events: .out)
        #expect(byDescriptor(try epoll.poll(timeout: .zero)) == [a: .out])
        try epoll.modify(FileDescriptor(rawValue: a), events: [.in, .out])
        try writeText(b, "x")
        #expect(byDescriptor(try epoll.poll(timeout: .zero)) == [a: [.in, .out]])
    }

    @Test("unregister stops the reports, and the descriptor can be registered again")
    func unregisterStopsReports() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let fd = try makeEventFD(initial: 1)
        defer { closeAll(fd) }
        try epoll.register(fd, events: .in)
        #expect(try epoll.poll(timeout: .zero).count == 1)
        try epoll.unregister(fd)
        #expect(try epoll.poll(timeout: .zero).isEmpty)
        try epoll.register(fd, events: .in)
        try epoll.unregister(FileDescriptor(rawValue: fd))
        #expect(try epoll.poll(timeout: .zero).isEmpty)
    }

    @Test("register accepts a socket, a pipe, an eventfd and another epoll")
    func registerKinds() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let other = try Epoll()
        defer { other.close() }
        let (a, b) = try makeSocketPair()
        let pipe = try makePipe()
        let event = try makeEventFD()
        defer { closeAll(a, b, pipe.read, pipe.write, event) }
        for fd in [a, pipe.read, pipe.write, event, try other.fileDescriptor.rawValue] {
            try epoll.register(fd, events: .in)
        }
        #expect(try epoll.poll(timeout: .zero).isEmpty)
    }

    /// Shared between the polling thread and the test; the kernel (and this
    /// documented use) allows `register` while another thread polls.
    private final class Shared: @unchecked Sendable {
        let epoll: Epoll
        var result: Result<[Epoll.Event], EpollError>?
        init(_ epoll: Epoll) { self.epoll = epoll }
    }

    @Test("threads: register from one thread wakes another thread blocked in poll")
    func registerWhileAnotherThreadPolls() throws {
        let shared = Shared(try Epoll())
        defer { shared.epoll.close() }
        let ready = try makeEventFD(initial: 1)
        defer { closeAll(ready) }
        let done = DispatchSemaphore(value: 0)
        let poller = Lock<pid_t?>(nil)
        Thread.detachNewThread {
            poller.withLock { $0 = currentThreadID() ?? -1 }
            shared.result = Result { () throws(EpollError) in try shared.epoll.poll(timeout: .seconds(60)) }
            done.signal()
        }
        // Register only once the other thread sleeps in epoll_wait, so that the registration must wake it.
        let deadline = ContinuousClock.now + .seconds(30)
        var blocked = false
        while !blocked && ContinuousClock.now < deadline {
            if let thread = poller.withLock({ $0 }), thread > 0 { blocked = isBlockedInEpollWait(thread) }
            if !blocked { usleep(1000) }
        }
        #expect(blocked, "the polling thread was not seen asleep in epoll_wait within 30 s")
        try shared.epoll.register(ready, events: .in)
        // Woken, it returns at once; not woken, its poll ends after 60 s with nothing.
        #expect(done.wait(timeout: .now() + 90) == .success)
        let events = try shared.result?.get() ?? []
        #expect(byDescriptor(events) == [ready: .in])
    }
}
