// register, modify and unregister, the failures: each errno the kernel gives
// (produced for real) and each limit it gives only under pressure (forced
// through SyscallMock) becomes its own EpollError, named after Python's
// exception.
import CEpollShim
import LinuxEpoll
import SystemPackage
import Syscalls
import Testing

@Suite("Error mapping")
struct ErrorMappingTests {
    @Test("register twice throws alreadyRegistered (EEXIST, FileExistsError)")
    func registerTwice() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        try epoll.register(a, events: .in)
        let error = #expect(throws: EpollError.alreadyRegistered) { try epoll.register(a, events: .out) }
        #expect(error?.errno == .fileExists)
        #expect(error?.pythonException == "FileExistsError")
    }

    @Test("modify of an unregistered fd throws notRegistered (ENOENT, FileNotFoundError)")
    func modifyUnknown() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        let error = #expect(throws: EpollError.notRegistered) { try epoll.modify(a, events: .in) }
        #expect(error?.errno == .noSuchFileOrDirectory)
        #expect(error?.pythonException == "FileNotFoundError")
    }

    @Test("unregister of an unregistered fd throws notRegistered (ENOENT, FileNotFoundError)")
    func unregisterUnknown() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        #expect(throws: EpollError.notRegistered) { try epoll.unregister(a) }
        try epoll.register(a)
        try epoll.unregister(a)
        #expect(throws: EpollError.notRegistered) { try epoll.unregister(a) }
    }

    @Test("register of a closed fd throws badDescriptor (EBADF, OSError)")
    func registerClosed() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(b) }
        let fd = try moveAbove(a, floor: DescriptorFloor.registeredThenClosed)
        closeAll(fd)
        let error = #expect(throws: EpollError.badDescriptor) { try epoll.register(fd, events: .in) }
        #expect(error?.errno == .badFileDescriptor)
        #expect(error?.pythonException == "OSError")
    }

    @Test("unregister after the fd was closed throws badDescriptor (EBADF, OSError since 3.9)")
    func unregisterAfterClose() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(b) }
        let fd = try moveAbove(a, floor: DescriptorFloor.unregisteredAfterClose)
        try epoll.register(fd, events: .in)
        closeAll(fd)
        #expect(throws: EpollError.badDescriptor) { try epoll.unregister(fd) }
        #expect(throws: EpollError.badDescriptor) { try epoll.modify(fd, events: .in) }
    }

    @Test("register of a regular file throws unsupportedFile (EPERM, PermissionError)")
    func registerRegularFile() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let file = try makeRegularFile()
        defer { closeAll(file) }
        let error = #expect(throws: EpollError.unsupportedFile) { try epoll.register(file) }
        #expect(error?.errno == .notPermitted)
        #expect(error?.pythonException == "PermissionError")
    }

    @Test("register of the epoll's own fd throws invalidArgument (EINVAL, OSError)")
    func registerSelf() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let error = #expect(throws: EpollError.invalidArgument) { try epoll.register(epoll.fileDescriptor) }
        #expect(error?.errno == .invalidArgument)
        #expect(error?.pythonException == "OSError")
    }

    @Test("register with EXCLUSIVE|ONESHOT throws invalidArgument (EINVAL, OSError)")
    func registerExclusiveOneshot() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        #expect(throws: EpollError.invalidArgument) { try epoll.register(a, events: [.in, .exclusive, .oneshot]) }
        try epoll.register(a, events: [.in, .exclusive])  // EXCLUSIVE alone is fine in a register
    }

    @Test("modify with EXCLUSIVE throws invalidArgument (EINVAL, OSError)")
    func modifyExclusive() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        try epoll.register(a, events: .in)
        #expect(throws: EpollError.invalidArgument) { try epoll.modify(a, events: [.in, .exclusive]) }
    }

    @Test("EXCLUSIVE takes only IN, OUT, ERR, HUP, WAKEUP and ET beside it: with RDHUP, PRI or ONESHOT, EINVAL")
    func exclusiveAllowedBits() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        for other: Epoll.Events in [.rdhup, .pri, .oneshot] {
            #expect(throws: EpollError.invalidArgument, "EXCLUSIVE|\(other)") {
                try epoll.register(a, events: [.in, .exclusive, other])
            }
        }
        // Every allowed bit at once is a valid registration, and a modify of it is not.
        try epoll.register(a, events: [.in, .out, .err, .hup, .et, .exclusive])
        #expect(throws: EpollError.invalidArgument) { try epoll.modify(a, events: [.in]) }
        // Unregister works as for any registration.
        try epoll.unregister(a)
    }

    @Test("a cycle of nested epolls throws other(ELOOP), an OSError")
    func nestingCycle() throws {
        let first = try Epoll()
        let second = try Epoll()
        defer { first.close(); second.close() }
        try first.register(second.fileDescriptor, events: .in)
        let error = #expect(throws: EpollError.other(.tooManySymbolicLinkLevels)) {
            try second.register(first.fileDescriptor, events: .in)
        }
        #expect(error?.pythonException == "OSError")
    }

    @Test("a negative fd throws invalidValue (ValueError) before any syscall", arguments: [CInt(-1), -2, CInt.min])
    func negativeDescriptor(fd: CInt) throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let mock = SyscallMock()
        mock.install {
            expectInvalidValue(#expect(throws: EpollError.self) { try epoll.register(fd) })
            expectInvalidValue(#expect(throws: EpollError.self) { try epoll.modify(fd, events: .in) })
            expectInvalidValue(#expect(throws: EpollError.self) { try epoll.unregister(fd) })
        }
        #expect(mock.calls(.epollCtl) == 0)
    }

    @Test(
        "epoll_ctl ENOSPC, ENOMEM (forced) throw limitReached (OSError)",
        arguments: [Errno.noSpace, .noMemory]
    )
    func controlLimit(errno: Errno) throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let (a, b) = try makeSocketPair()
        defer { closeAll(a, b) }
        let mock = SyscallMock()
        mock.force(errno, on: .epollCtl)
        let error = mock.install { #expect(throws: EpollError.limitReached(errno)) { try epoll.register(a) } }
        #expect(error?.errno == errno)
        #expect(error?.pythonException == "OSError")
        #expect(mock.calls(.epollCtl) == 1)
        try epoll.register(a)  // the forced fault was consumed; nothing was registered
    }

    @Test(
        "epoll_create1 EMFILE, ENFILE, ENOMEM (forced) throw limitReached (OSError)",
        arguments: [Errno.tooManyOpenFiles, .tooManyOpenFilesInSystem, .noMemory]
    )
    func createLimit(errno: Errno) throws {
        let mock = SyscallMock()
        mock.force(errno, on: .epollCreate1, times: 2)
        mock.install {
            #expect(throws: EpollError.limitReached(errno)) { try Epoll() }
            #expect(throws: EpollError.limitReached(errno)) { try Epoll(sizeHint: 5) }
        }
        #expect(mock.calls(.epollCreate1) == 2)
        #expect(mock.calls(.close) == 0)  // a failed init has nothing to release
    }

    @Test("an errno with no case of its own (forced EIO on epoll_wait) throws other")
    func otherErrno() throws {
        let epoll = try Epoll()
        defer { epoll.close() }
        let mock = SyscallMock()
        mock.force(.ioError, on: .epollWait)
        let error = mock.install { #expect(throws: EpollError.other(.ioError)) { try epoll.poll(timeout: .zero) } }
        #expect(error?.errno == .ioError)
    }

    @Test("pythonException names each case after CPython's exception")
    func pythonExceptionNames() {
        let expected: [(EpollError, String)] = [
            (.closed, "ValueError"), (.invalidValue("x"), "ValueError"), (.timeoutTooLarge, "OverflowError"),
            (.alreadyRegistered, "FileExistsError"), (.notRegistered, "FileNotFoundError"),
            (.badDescriptor, "OSError"), (.unsupportedFile, "PermissionError"), (.invalidArgument, "OSError"),
            (.limitReached(.noSpace), "OSError"), (.other(.tooManySymbolicLinkLevels), "OSError"),
        ]
        for (error, name) in expected {
            #expect(error.pythonException == name, "\(error)")
        }
    }

    @Test("errno is the kernel's errno, nil for errors raised before any syscall")
    func errnoProperty() {
        let expected: [(EpollError, Errno?)] = [
            (.closed, nil), (.invalidValue("x"), nil), (.timeoutTooLarge, nil),
            (.alreadyRegistered, .fileExists), (.notRegistered, .noSuchFileOrDirectory),
            (.badDescriptor, .badFileDescriptor), (.unsupportedFile, .notPermitted),
            (.invalidArgument, .invalidArgument), (.limitReached(.tooManyOpenFiles), .tooManyOpenFiles),
            (.other(.ioError), .ioError),
        ]
        for (error, errno) in expected {
            #expect(error.errno == errno, "\(error)")
        }
    }
}

/// Records an issue unless `error` is `.invalidValue`, whose Python name is `ValueError`.
func expectInvalidValue(_ error: EpollError?, sourceLocation: SourceLocation = #_sourceLocation) {
    guard case .invalidValue = error else {
        Issue.record("expected invalidValue, got \(String(describing: error))", sourceLocation: sourceLocation)
        return
    }
    #expect(error?.pythonException == "ValueError", sourceLocation: sourceLocation)
}
