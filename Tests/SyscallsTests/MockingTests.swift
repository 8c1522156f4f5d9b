// The debug-only SyscallMock: forced errnos are consumed in order, calls are
// counted, and the mock is scoped to the task that installed it.
import CEpollShim
import Foundation
import SystemPackage
import Syscalls
import Testing

@Suite("SyscallMock")
struct MockingTests {
    @Test("forced errnos are returned in order, then the real call runs")
    func forcedInOrder() throws {
        let (readEnd, writeEnd) = try system_pipe2(O_CLOEXEC).get()
        defer { _ = system_close(readEnd); _ = system_close(writeEnd) }
        let mock = SyscallMock()
        mock.force(.noMemory, on: .fcntl)
        mock.force(.badFileDescriptor, on: .fcntl)
        let results = mock.install { (0..<3).map { _ in system_fcntl(readEnd, F_GETFD) } }
        #expect(results.map(failure) == [.noMemory, .badFileDescriptor, nil])
        #expect(mock.calls(.fcntl) == 3)
        #expect(mock.calls(.close) == 0)
    }

    @Test("a fault forced on one syscall leaves the others alone")
    func faultIsPerSyscall() throws {
        let mock = SyscallMock()
        mock.force(.tooManyOpenFiles, on: .socket)
        let pipe = mock.install { system_pipe2(O_CLOEXEC) }
        let (readEnd, writeEnd) = try pipe.get()
        _ = system_close(readEnd)
        _ = system_close(writeEnd)
        #expect(failure(mock.install { system_socket(AF_UNIX, CInt(SOCK_STREAM.rawValue)) }) == .tooManyOpenFiles)
        #expect(mock.calls(.pipe2) == 1)
        #expect(mock.calls(.socket) == 1)
    }

    @Test("calls outside install are neither counted nor faulted")
    func onlyInsideInstall() throws {
        let (readEnd, writeEnd) = try system_pipe2(O_CLOEXEC).get()
        defer { _ = system_close(readEnd); _ = system_close(writeEnd) }
        let mock = SyscallMock()
        mock.force(.ioError, on: .fcntl)
        #expect(failure(system_fcntl(readEnd, F_GETFD)) == nil)
        #expect(mock.calls(.fcntl) == 0)
        #expect(failure(mock.install { system_fcntl(readEnd, F_GETFD) }) == .ioError)
    }

    @Test("another thread does not see the mock installed by this task")
    func scopedToTask() throws {
        let (readEnd, writeEnd) = try system_pipe2(O_CLOEXEC).get()
        defer { _ = system_close(readEnd); _ = system_close(writeEnd) }
        let mock = SyscallMock()
        mock.force(.ioError, on: .fcntl, times: 10)
        let done = DispatchSemaphore(value: 0)
        let otherThread = Lock<Errno??>(nil)
        mock.install {
            Thread.detachNewThread {
                otherThread.withLock { $0 = .some(failure(system_fcntl(readEnd, F_GETFD))) }
                done.signal()
            }
            done.wait()
        }
        #expect(otherThread.withLock { $0 } == .some(nil))
        #expect(mock.calls(.fcntl) == 0)
    }
}
