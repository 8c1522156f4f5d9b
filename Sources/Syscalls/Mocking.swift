// The debug-only fault injection of the wrappers: `SyscallMock`.
#if DEBUG
    import Synchronization
    import SystemPackage

    /// A debug-only hook that lets a test force a chosen errno on the next N calls
    /// of a chosen syscall, and count how often each syscall was really entered.
    ///
    /// The hook is scoped to the current task (a `@TaskLocal`), so tests that run
    /// in parallel never see each other's faults. It exists to produce the faults
    /// the kernel will not produce on demand (EINTR, EMFILE, ENOMEM); the happy
    /// path always runs against the real kernel. Release builds compile it out.
    ///
    /// ```swift
    /// let mock = SyscallMock()
    /// mock.force(.interrupted, on: .epollCtl, times: 3)
    /// try mock.install { try epoll.register(fd) }
    /// #expect(mock.calls(.epollCtl) == 4)
    /// ```
    @usableFromInline package final class SyscallMock: Sendable {
        private struct State {
            var forced: [Syscall: [Errno]] = [:]
            var calls: [Syscall: Int] = [:]
        }

        private let state = Lock(State())

        /// The mock that intercepts the current task's syscalls, if any.
        @usableFromInline @TaskLocal package static var current: SyscallMock?

        /// Creates a mock that forces nothing and counts every call.
        package init() {}

        /// Makes the next `times` calls of `call` fail with `errno` without
        /// entering the kernel. Queued faults are consumed in order.
        package func force(_ errno: Errno, on call: Syscall, times: Int = 1) {
            state.withLock { $0.forced[call, default: []].append(contentsOf: repeatElement(errno, count: times)) }
        }

        /// How many times `call` was attempted while this mock was installed,
        /// forced failures included.
        package func calls(_ call: Syscall) -> Int {
            state.withLock { $0.calls[call, default: 0] }
        }

        /// Runs `body` with this mock intercepting the current task's syscalls.
        package func install<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
            let result: Result<R, E> = SyscallMock.$current.withValue(self) {
                do throws(E) { return .success(try body()) } catch { return .failure(error) }
            }
            return try result.get()
        }

        /// Counts one attempt of `call` and returns the errno to force, if any.
        @usableFromInline package func intercept(_ call: Syscall) -> Errno? {
            state.withLock { state in
                state.calls[call, default: 0] += 1
                guard var queue = state.forced[call], !queue.isEmpty else { return nil }
                let errno = queue.removeFirst()
                state.forced[call] = queue
                return errno
            }
        }
    }
#endif
