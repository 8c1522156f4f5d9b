// The floor under each selector: the bare syscall at the same N, set up the
// cheapest way the syscall allows, so that the ratio to it is what the library
// adds. Each probe checks its count on every call, and which descriptors are
// ready once, before timing.
import SystemPackage
import Syscalls

/// A bare syscall, prepared for one set of watched descriptors.
protocol RawProbe: AnyObject {
    /// Makes `calls` calls, each of which must report exactly the ready count.
    func run(_ calls: Int) throws(BenchError)
}

/// `epoll_wait` on an epoll where every descriptor was registered once, into
/// a buffer allocated once.
final class RawEpoll: RawProbe {
    private let epfd: CInt
    private let events = EpollEventArray(capacity: 1024)
    private let expected: Int

    init(_ watched: WatchedDescriptors) throws(BenchError) {
        switch system_epoll_create1(EpollCreateFlags.closeOnExec) {
        case .success(let fd): epfd = fd
        case .failure(let errno):
            events.deallocate()
            throw .system("epoll_create1", errno)
        }
        expected = watched.ready.count
        for fd in watched.all {
            if case .failure(let errno) = system_epoll_ctl(
                epfd, EpollOperation.add, fd, events: EpollEventBits.in, data: UInt64(fd))
            {
                throw .system("epoll_ctl(EPOLL_CTL_ADD, \(fd))", errno)
            }
        }
        let count = try wait()
        let found = (0..<count).map { CInt(truncatingIfNeeded: events.data(at: $0)) }
        try expectSame(found, watched.ready, "raw epoll_wait")
    }

    deinit {
        _ = system_close(epfd)
        events.deallocate()
    }

    func run(_ calls: Int) throws(BenchError) {
        for _ in 0..<calls {
            let count = try wait()
            guard count == expected else { throw .wrongReadyCount("raw epoll_wait", count, expected) }
        }
    }

    @inline(__always)
    private func wait() throws(BenchError) -> Int {
        switch system_epoll_wait(epfd, events, 1024, timeoutMilliseconds: 0) {
        case .success(let count): return Int(count)
        case .failure(let errno): throw .system("epoll_wait", errno)
        }
    }
}

/// `poll` over a `pollfd` array built once.
final class RawPoll: RawProbe {
    private let descriptors: UnsafeMutableBufferPointer<PollDescriptor>
    private let expected: Int

    init(_ watched: WatchedDescriptors) throws(BenchError) {
        descriptors = .allocate(capacity: watched.all.count)
        for (index, fd) in watched.all.enumerated() {
            descriptors[index] = PollDescriptor(fd: fd, events: PollEvents.in, revents: 0)
        }
        expected = watched.ready.count
        _ = try wait()
        let found = descriptors.filter { $0.revents & PollEvents.in != 0 }.map(\.fd)
        try expectSame(found, watched.ready, "raw poll")
    }

    deinit {
        descriptors.deallocate()
    }

    func run(_ calls: Int) throws(BenchError) {
        for _ in 0..<calls {
            let count = try wait()
            guard count == expected else { throw .wrongReadyCount("raw poll", count, expected) }
        }
    }

    @inline(__always)
    private func wait() throws(BenchError) -> Int {
        switch system_poll(descriptors.baseAddress, descriptors.count, timeoutMilliseconds: 0) {
        case .success(let count): return Int(count)
        case .failure(let errno): throw .system("poll", errno)
        }
    }
}

/// `select` with its read set rebuilt before every call, as `select`
/// requires (it overwrites the sets with the ready descriptors).
final class RawSelect: RawProbe {
    private let fds: [CInt]
    private let highest: CInt
    private let readSet = DescriptorSet()
    private let writeSet = DescriptorSet()
    private let exceptSet = DescriptorSet()
    private let expected: Int

    /// - Precondition: every descriptor is below `FD_SETSIZE`; the caller
    ///   found out by registering them with a `SelectSelector` first.
    init(_ watched: WatchedDescriptors) throws(BenchError) {
        fds = watched.all
        highest = watched.highest
        expected = watched.ready.count
        _ = try wait()
        try expectSame(fds.filter { readSet.contains($0) }, watched.ready, "raw select")
    }

    func run(_ calls: Int) throws(BenchError) {
        for _ in 0..<calls {
            let count = try wait()
            guard count == expected else { throw .wrongReadyCount("raw select", count, expected) }
        }
    }

    @inline(__always)
    private func wait() throws(BenchError) -> Int {
        let result = system_select(readSet, writeSet, exceptSet, timeoutMilliseconds: 0) {
            readSet.removeAll()
            writeSet.removeAll()
            exceptSet.removeAll()
            for fd in fds { readSet.insert(fd) }
            return highest + 1
        }
        switch result {
        case .success(let count): return Int(count)
        case .failure(let errno): throw .system("select", errno)
        }
    }
}

/// Throws unless `found` holds exactly the descriptors of `expected` (sorted).
func expectSame(_ found: [CInt], _ expected: [CInt], _ what: String) throws(BenchError) {
    guard found.sorted() == expected else {
        throw .wrongReadySet(what, found: found.sorted(), expected: expected)
    }
}
