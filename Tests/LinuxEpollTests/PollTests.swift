// Python's epoll.poll(timeout, maxevents) in Swift: poll's timeout, maxEvents and
// results, and the allocation-free form that fills an EventBuffer.
import CEpollShim
import LinuxEpoll
import SystemPackage
import Syscalls
import Testing

@Suite("Poll")
struct PollTests {
    @Test("timeout .zero returns at once with nothing when nothing is ready")
    func zeroTimeout() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let idle = try makeEventFD()
        defer { closeAll(idle) }
        try epoll.register(idle, events: .in)
        #expect(try epoll.poll(timeout: .zero).isEmpty)
    }

    @Test("timeout 0.1 ms is rounded up: it waits at least 1 ms")
    func subMillisecondRoundsUp() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let clock = ContinuousClock()
        let start = clock.now
        let events = try epoll.poll(timeout: .microseconds(100))
        #expect(clock.now - start >= .milliseconds(1))
        #expect(events.isEmpty)
    }

    @Test("timeout 20 ms with nothing ready waits at least 20 ms and returns empty")
    func timeoutExpires() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try epoll.poll(timeout: .milliseconds(20)).isEmpty)
        #expect(clock.now - start >= .milliseconds(20))
    }

    @Test(
        "timeout nil or negative waits forever, so it returns only when something is ready",
        arguments: [nil, Duration.seconds(-1), .milliseconds(-1), .nanoseconds(-1)]
    )
    func foreverReturnsWhenReady(timeout: Duration?) throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let ready = try makeEventFD(initial: 1)
        defer { closeAll(ready) }
        try epoll.register(ready, events: .in)
        #expect(byDescriptor(try epoll.poll(timeout: timeout)) == [ready: .in])
    }

    @Test(
        "a timeout beyond CInt.max ms throws timeoutTooLarge (OverflowError) before any syscall",
        arguments: [Duration.seconds(Int64(CInt.max)), .milliseconds(Int64(CInt.max) + 1), .seconds(Int64.max)]
    )
    func timeoutTooLarge(timeout: Duration) throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let buffer = Epoll.EventBuffer(capacity: 1)
        let mock = SyscallMock()
        mock.install {
            let error = #expect(throws: EpollError.timeoutTooLarge) { try epoll.poll(timeout: timeout) }
            #expect(error?.pythonException == "OverflowError")
            #expect(throws: EpollError.timeoutTooLarge) { try epoll.poll(into: buffer, timeout: timeout) }
        }
        #expect(mock.calls(.epollWait) == 0)
    }

    @Test("a too large timeout is reported before an invalid maxEvents, as CPython does (OverflowError first)")
    func timeoutCheckedBeforeMaxEvents() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        #expect(throws: EpollError.timeoutTooLarge) { try epoll.poll(timeout: .seconds(Int64(CInt.max)), maxEvents: 0) }
    }

    @Test("a timeout of exactly CInt.max ms is accepted")
    func largestTimeoutAccepted() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let ready = try makeEventFD(initial: 1)
        defer { closeAll(ready) }
        try epoll.register(ready, events: .in)
        #expect(try epoll.poll(timeout: .milliseconds(Int64(CInt.max))).count == 1)
    }

    @Test("maxEvents 0 and below -1 throw invalidValue (ValueError)", arguments: [0, -2, Int.min])
    func maxEventsRejected(maxEvents: Int) throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let mock = SyscallMock()
        let error = mock.install {
            #expect(throws: EpollError.self) { try epoll.poll(timeout: .zero, maxEvents: maxEvents) }
        }
        expectInvalidValue(error)
        #expect(mock.calls(.epollWait) == 0)
    }

    @Test("maxEvents 1 with three ready descriptors returns one event")
    func maxEventsLimits() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let fds = try (0..<3).map { _ in try makeEventFD(initial: 1) }
        defer { for fd in fds { closeAll(fd) } }
        for fd in fds { try epoll.register(fd, events: .in) }
        let one = try epoll.poll(timeout: .zero, maxEvents: 1)
        #expect(one.count == 1)
        #expect(fds.contains(one[0].fileDescriptor.rawValue))
        #expect(try epoll.poll(timeout: .zero, maxEvents: 3).count == 3)
    }

    @Test("the default maxEvents is 1023 (FD_SETSIZE - 1): 1030 ready descriptors give 1023 events")
    func defaultMaxEvents() throws {
        #expect(Epoll.defaultMaxEvents == 1023)
        try ensureDescriptorLimit(atLeast: 4096)
        let epoll = try Epoll()
        defer { epoll.close() }
        var fds: [CInt] = []
        defer { for fd in fds { closeAll(fd) } }
        for _ in 0..<1030 {
            fds.append(try makeEventFD(initial: 1))
            try epoll.register(fds.last!, events: .in)
        }
        #expect(try epoll.poll(timeout: .zero).count == 1023)
        #expect(try epoll.poll(timeout: .zero, maxEvents: -1).count == 1023)
        #expect(try epoll.poll(timeout: .zero, maxEvents: 2000).count == 1030)
        #expect(try epoll.poll(timeout: .zero, maxEvents: 10).count == 10)
    }

    @Test("poll returns Events that decode the descriptor and the flags")
    func eventsDecode() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        let readable = try makeEventFD(initial: 1)
        defer { closeAll(a, b, readable) }
        try epoll.register(a, events: [.in, .out])
        try epoll.register(readable, events: .in)
        let events = try epoll.poll(timeout: .zero)
        #expect(events.count == 2)
        #expect(byDescriptor(events) == [a: .out, readable: .in])
        let event = Epoll.Event(fileDescriptor: FileDescriptor(rawValue: 7), events: [.in, .rdhup])
        #expect(event.description == "(7, IN|RDHUP)")
    }

    @Test("poll(into:) fills the buffer, sets count, and the buffer is reused across polls")
    func pollIntoBuffer() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let first = try makeEventFD(initial: 1)
        let second = try makeEventFD(initial: 1)
        defer { closeAll(first, second) }
        try epoll.register(first, events: .in)
        try epoll.register(second, events: .in)
        let buffer = Epoll.EventBuffer(capacity: 8)
        #expect(buffer.capacity == 8)
        #expect(buffer.isEmpty)

        #expect(try epoll.poll(into: buffer, timeout: .zero) == 2)
        #expect(buffer.count == 2)
        #expect(Set(buffer.map(\.fileDescriptor.rawValue)) == [first, second])
        #expect(buffer.allSatisfy { $0.events == .in })

        try readBytes(first, upTo: 8)  // drains the counter: first is no longer readable
        #expect(try epoll.poll(into: buffer, timeout: .zero) == 1)
        #expect(Array(buffer) == [Epoll.Event(fileDescriptor: FileDescriptor(rawValue: second), events: .in)])

        try readBytes(second, upTo: 8)
        #expect(try epoll.poll(into: buffer, timeout: .zero) == 0)
        #expect(buffer.isEmpty)
    }

    @Test("poll(into:) returns at most the buffer's capacity")
    func pollIntoCapacity() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let fds = try (0..<3).map { _ in try makeEventFD(initial: 1) }
        defer { for fd in fds { closeAll(fd) } }
        for fd in fds { try epoll.register(fd, events: .in) }
        let buffer = Epoll.EventBuffer(capacity: 1)
        #expect(try epoll.poll(into: buffer, timeout: .zero) == 1)
        #expect(buffer.count == 1)
        #expect(fds.contains(buffer[0].fileDescriptor.rawValue))
    }

    @Test("poll(into:) with a timeout waits like poll and leaves the buffer empty")
    func pollIntoTimeout() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let ready = try makeEventFD(initial: 1)
        defer { closeAll(ready) }
        try epoll.register(ready, events: .in)
        let buffer = Epoll.EventBuffer(capacity: 4)
        #expect(try epoll.poll(into: buffer) == 1)
        try epoll.unregister(ready)
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try epoll.poll(into: buffer, timeout: .milliseconds(5)) == 0)
        #expect(clock.now - start >= .milliseconds(5))
        #expect(buffer.isEmpty)
    }
}
