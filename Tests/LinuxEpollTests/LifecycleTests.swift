// Python's epoll(), fromfd, fileno, closed, close and `with`: creating, owning, closing and scoping
// an epoll instance.
import CEpollShim
import LinuxEpoll
import SystemPackage
import Syscalls
import Testing

@Suite("Lifecycle")
struct LifecycleTests {
    @Test("create: init() gives an open epoll instance that polls")
    func createOpens() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        #expect(!epoll.isClosed)
        #expect(try epoll.poll(timeout: .zero).isEmpty)
    }

    @Test("create: sizeHint 0 and -2 throw invalidValue (ValueError)", arguments: [0, -2, Int.min])
    func sizeHintRejected(sizeHint: Int) throws {
        let mock = SyscallMock()
        let error = mock.install { #expect(throws: EpollError.self) { try Epoll(sizeHint: sizeHint) } }
        expectInvalidValue(error)
        #expect(mock.calls(.epollCreate1) == 0)
    }

    @Test("create: sizeHint -1 and positive values are accepted", arguments: [-1, 1, 5, 1_000_000])
    func sizeHintAccepted(sizeHint: Int) throws {
        let epoll = try Epoll(sizeHint: sizeHint)
        defer { epoll.close() }
        #expect(!epoll.isClosed)
        #expect(try epoll.poll(timeout: .zero).isEmpty)
    }

    @Test("close-on-exec: the epoll descriptor has FD_CLOEXEC")
    func closeOnExec() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        #expect(try isCloseOnExec(epoll.fileDescriptor.rawValue))
    }

    @Test("fileDescriptor is an open epoll descriptor; on a closed Epoll it throws closed (ValueError)")
    func fileDescriptorProperty() throws {
        let epoll = try Epoll()
        let fd = try epoll.fileDescriptor.rawValue
        #expect(fd >= 0)
        #expect(isOpen(fd))
        // It is an epoll instance: EPOLL_CTL_DEL of an unknown fd gives ENOENT, not EINVAL.
        #expect(failure(system_epoll_ctl(fd, EPOLL_CTL_DEL, 0, events: 0, data: 0)) == .noSuchFileOrDirectory)
        epoll.close()
        #expect(throws: EpollError.closed) { try epoll.fileDescriptor }
    }

    @Test("isClosed is false while open and true after close")
    func isClosedProperty() throws {
        let epoll = try Epoll()
        #expect(epoll.isClosed == false)
        epoll.close()
        #expect(epoll.isClosed == true)
    }

    @Test("close is idempotent: the second call makes no syscall")
    func closeIdempotent() throws {
        let epoll = try Epoll()
        let mock = SyscallMock()
        mock.install {
            epoll.close()
            epoll.close()
            epoll.close()
        }
        #expect(mock.calls(.close) == 1)
        #expect(epoll.isClosed)
    }

    @Test("close is not retried on EINTR, and the Epoll counts as closed")
    func closeNotRetriedOnInterrupt() throws {
        let epoll = try Epoll()
        let fd = try epoll.fileDescriptor.rawValue
        let mock = SyscallMock()
        mock.force(.interrupted, on: .close)
        mock.install { epoll.close() }
        #expect(mock.calls(.close) == 1)
        #expect(epoll.isClosed)
        // The forced EINTR never entered the kernel, so the descriptor is still ours to release.
        #expect(failure(system_close(fd)) == nil)
    }

    @Test("deinit closes the descriptor it owns")
    func deinitClosesAdopted() throws {
        let fd = try moveAbove(system_epoll_create1(CInt(EPOLL_CLOEXEC)).get(), floor: DescriptorFloor.adoptedDeinit)
        do {
            let epoll = Epoll(adopting: fd)
            #expect(try epoll.fileDescriptor.rawValue == fd)
        }
        #expect(!isOpen(fd))
    }

    @Test("deinit of an Epoll() releases the epoll instance (an outer epoll stops reporting it)")
    func deinitReleasesInstance() throws {
        let outer = try Epoll()
        defer { outer.close() }
        let ready = try makeEventFD(initial: 1)
        defer { closeAll(ready) }
        do {
            let inner = try Epoll()
            try inner.register(ready, events: .in)
            try outer.register(inner.fileDescriptor, events: .in)
            #expect(try outer.poll(timeout: .zero).count == 1)
        }
        // The outer registration goes away only when the inner file is released.
        #expect(try outer.poll(timeout: .zero).isEmpty)
    }

    @Test("withScope closes after the body and returns its value")
    func withScopeClosesAfterBody() throws {
        let epoll = try Epoll()
        let value = try epoll.withScope { scoped in
            #expect(scoped === epoll)
            #expect(!scoped.isClosed)
            return 42
        }
        #expect(value == 42)
        #expect(epoll.isClosed)
    }

    @Test("withScope closes when the body throws, and rethrows")
    func withScopeClosesOnThrow() throws {
        let epoll = try Epoll()
        #expect(throws: MarkerError()) { try epoll.withScope { _ in throw MarkerError() } }
        #expect(epoll.isClosed)
    }

    @Test("withScope on a closed Epoll throws closed (ValueError) without running the body")
    func withScopeOnClosed() throws {
        let epoll = try Epoll()
        epoll.close()
        var ran = false
        #expect(throws: EpollError.closed) { try epoll.withScope { _ in ran = true } }
        #expect(!ran)
    }

    @Test("withEpoll gives an open instance and closes it after the body and on throw")
    func withEpollCloses() throws {
        var seen: Epoll?
        let count = try Epoll.withEpoll { epoll in
            seen = epoll
            return try epoll.poll(timeout: .zero).count
        }
        #expect(count == 0)
        #expect(seen?.isClosed == true)

        var thrown: Epoll?
        #expect(throws: MarkerError()) {
            try Epoll.withEpoll { epoll in
                thrown = epoll
                throw MarkerError()
            }
        }
        #expect(thrown?.isClosed == true)
    }

    @Test("init(adopting:) takes the descriptor as is, uses it and closes it")
    func adoptingOwnsAndCloses() throws {
        let fd = try moveAbove(system_epoll_create1(CInt(EPOLL_CLOEXEC)).get(), floor: DescriptorFloor.adopted)
        let epoll = Epoll(adopting: FileDescriptor(rawValue: fd))
        #expect(try epoll.fileDescriptor.rawValue == fd)
        let ready = try makeEventFD(initial: 1)
        defer { closeAll(ready) }
        try epoll.register(ready, events: .in)
        #expect(try epoll.poll(timeout: .zero).map(\.fileDescriptor.rawValue) == [ready])
        epoll.close()
        #expect(!isOpen(fd))
    }

    @Test("init(adopting:) of a descriptor that is not an epoll fails on use with invalidArgument")
    func adoptingNonEpoll() throws {
        let pipe = try makePipe()
        defer { closeAll(pipe.write) }
        let epoll = Epoll(adopting: pipe.read)  // owns pipe.read from here on
        defer { epoll.close() }
        #expect(throws: EpollError.invalidArgument) { try epoll.poll(timeout: .zero) }
        #expect(throws: EpollError.invalidArgument) { try epoll.register(pipe.write, events: .out) }
    }

    @Test("every method of a closed Epoll throws closed before any syscall")
    func closedFailsBeforeSyscall() throws {
        let epoll = try Epoll()
        epoll.close()
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        let buffer = Epoll.EventBuffer(capacity: 4)
        let mock = SyscallMock()
        mock.install {
            #expect(throws: EpollError.closed) { try epoll.fileDescriptor }
            #expect(throws: EpollError.closed) { try epoll.register(a) }
            #expect(throws: EpollError.closed) { try epoll.register(FileDescriptor(rawValue: a), events: .in) }
            #expect(throws: EpollError.closed) { try epoll.register(-1) }
            #expect(throws: EpollError.closed) { try epoll.register(a, events: .in, userData: 7) }
            #expect(throws: EpollError.closed) { try epoll.modify(a, events: .in) }
            #expect(throws: EpollError.closed) { try epoll.modify(FileDescriptor(rawValue: a), events: .in) }
            #expect(throws: EpollError.closed) { try epoll.modify(a, events: .in, userData: 7) }
            #expect(throws: EpollError.closed) { try epoll.unregister(a) }
            #expect(throws: EpollError.closed) { try epoll.unregister(FileDescriptor(rawValue: a)) }
            #expect(throws: EpollError.closed) { try epoll.poll() }
            #expect(throws: EpollError.closed) { try epoll.poll(timeout: .zero, maxEvents: 0) }
            #expect(throws: EpollError.closed) { try epoll.poll(timeout: .seconds(Int64(CInt.max))) }
            #expect(throws: EpollError.closed) { try epoll.poll(into: buffer, timeout: .zero) }
            #expect(throws: EpollError.closed) { try epoll.withScope { _ in } }
            epoll.close()
        }
        for call in Syscall.allCases {
            #expect(mock.calls(call) == 0, "\(call.rawValue) was called")
        }
    }

    @Test("the closed error reads as Python's message")
    func closedMessage() {
        #expect(EpollError.closed.description == "I/O operation on closed epoll object")
        #expect(EpollError.closed.pythonException == "ValueError")
    }
}
