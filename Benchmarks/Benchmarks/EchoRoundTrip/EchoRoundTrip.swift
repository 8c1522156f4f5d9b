// One echo round trip over a socketpair, through the reactor: the client end
// writes 64 bytes; one `runOnce(timeout: .zero)` of an
// `EventLoop<EpollSelector<Int>>` wakes the `TCPConnection` on the other end,
// whose handler upper-cases the bytes in place and writes them back (as
// `UpperEchoServer` does); the client reads the 64 bytes and checks them.
// Target: 0 mallocs per echoed chunk in steady state.
//
// The second benchmark is the floor: the same five system calls
// (write, epoll_wait, recv, send, read) made directly, with no reactor
// (epoll_wait through LinuxEpoll's `Epoll.poll(into:)`, the rest through Glibc).
//
// Another is the same round trip through the async API: a task on the
// loop's task executor reading and writing an `AsyncTCPConnection`.
// Target: 0 mallocs per echoed message.
//
// The third is the loop's deferred work: one `enqueue` and one
// `runOnce(timeout: .zero)` that runs it. Target: 0 mallocs per iteration.
//
// Each iteration is 1,000 operations; the figures are per operation.
import Benchmark
import BenchmarkSupport
import LinuxEpoll
import Reactor
import Selectors
import SystemPackage
import UpperEcho

#if canImport(Glibc)
    import Glibc
#endif

let payloadSize = 64

/// The handler `UpperEchoServer` would be, without its counters and logging.
final class UpperCaseEcho: TCPConnectionHandler {
    var closeReason: TCPConnection.CloseReason?

    func connection(_ connection: TCPConnection, didRead bytes: UnsafeMutableRawBufferPointer) {
        Uppercase.apply(bytes)
        connection.write(UnsafeRawBufferPointer(bytes))
    }

    func connectionDidClose(_ connection: TCPConnection, reason: TCPConnection.CloseReason) {
        closeReason = reason
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
}

/// A non-blocking AF_UNIX stream socketpair.
func makeSocketPair() throws -> (CInt, CInt) {
    var fds: (CInt, CInt) = (-1, -1)
    let type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
    let result = withUnsafeMutableBytes(of: &fds) {
        socketpair(AF_UNIX, type, 0, $0.baseAddress!.assumingMemoryBound(to: CInt.self))
    }
    guard result == 0 else { throw FixtureError(description: "socketpair: errno \(errno)") }
    return fds
}

/// The client's side of a round trip: the request, the reply it expects,
/// and where the reply goes.
final class Payload: @unchecked Sendable {
    let request = UnsafeMutableRawBufferPointer.allocate(byteCount: payloadSize, alignment: 16)
    let expected = UnsafeMutableRawBufferPointer.allocate(byteCount: payloadSize, alignment: 16)
    let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: payloadSize, alignment: 16)

    init() {
        // Lower-case letters with a few other bytes, as echo-load sends.
        for i in 0..<payloadSize {
            request[i] = i % 9 == 8 ? UInt8(truncatingIfNeeded: i &* 37) : 0x61 + UInt8(i % 26)
            expected[i] = Uppercase.apply(request[i])
        }
    }

    deinit {
        request.deallocate()
        expected.deallocate()
        reply.deallocate()
    }

    /// Writes the request on `fd`, then reads the whole reply, calling
    /// `serve` whenever it is not there yet. Returns whether the reply is
    /// right.
    @inline(__always)
    func roundTrip(_ fd: CInt, serve: () -> Void) -> Bool {
        guard write(fd, request.baseAddress, payloadSize) == payloadSize else { return false }
        var received = 0
        var attempts = 0
        while received < payloadSize {
            serve()
            let count = read(fd, reply.baseAddress! + received, payloadSize - received)
            if count > 0 {
                received += count
            } else if count < 0 && errno == EAGAIN && attempts < 100 {
                attempts += 1
            } else {
                return false
            }
        }
        return memcmp(reply.baseAddress!, expected.baseAddress!, payloadSize) == 0
    }
}

/// The reactor on one end of a socketpair, the client on the other.
final class ReactorFixture: @unchecked Sendable {
    // @unchecked: each benchmark runs on one thread at a time.
    let loop: EventLoop<EpollSelector<Int>>
    let handler = UpperCaseEcho()
    let connection: TCPConnection
    let client: CInt
    let payload = Payload()
    var loopIterations = 0

    init() throws {
        let (server, client) = try makeSocketPair()
        self.client = client
        loop = try EventLoop(selector: try EpollSelector<Int>())
        connection = try TCPConnection(loop: loop, fileDescriptor: FileDescriptor(rawValue: server), handler: handler)
    }

    deinit {
        connection.abort()
        close(client)
    }

    @inline(__always)
    func roundTrip() -> Bool {
        payload.roundTrip(client) {
            try! loop.runOnce(timeout: .zero)
            loopIterations += 1
        }
    }
}

/// The same system calls without the reactor: `Epoll` (the thin LinuxEpoll
/// layer, no selector, no loop) on the server end, recv into one buffer,
/// upper-case in place, send.
final class SyscallFixture: @unchecked Sendable {
    // @unchecked: each benchmark runs on one thread at a time.
    let epoll: Epoll
    let events = Epoll.EventBuffer(capacity: 64)
    let server: CInt
    let client: CInt
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    let payload = Payload()

    init() throws {
        (server, client) = try makeSocketPair()
        epoll = try Epoll()
        try epoll.register(server, events: .in)
    }

    deinit {
        epoll.close()
        close(server)
        close(client)
        buffer.deallocate()
    }

    @inline(__always)
    func serve() {
        guard (try? epoll.poll(into: events, timeout: .zero)) ?? 0 > 0 else { return }
        let count = recv(server, buffer.baseAddress, buffer.count, 0)
        guard count > 0 else { return }
        let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[..<count])
        Uppercase.apply(bytes)
        _ = send(server, bytes.baseAddress, count, CInt(MSG_NOSIGNAL))
    }

    @inline(__always)
    func roundTrip() -> Bool {
        payload.roundTrip(client) { serve() }
    }
}

/// The reactor on one end of a socketpair through the async API: one task
/// on the loop's task executor reads with `AsyncTCPConnection.read(into:)`
/// (waiting on EAGAIN), upper-cases in place and writes back.
final class AsyncFixture: @unchecked Sendable {
    // @unchecked: each benchmark runs on one thread at a time; the task runs
    // on the loop, which runs on that thread inside `runOnce`.
    let loop: EventLoop<EpollSelector<Int>>
    let connection: AsyncTCPConnection
    let client: CInt
    let payload = Payload()
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    var loopIterations = 0

    init() throws {
        let (server, client) = try makeSocketPair()
        self.client = client
        loop = try EventLoop(selector: try EpollSelector<Int>())
        connection = try AsyncTCPConnection(loop: loop, fileDescriptor: FileDescriptor(rawValue: server))
        let connection = self.connection
        let buffer = UnsafeMutableRawBufferPointer(self.buffer)
        nonisolated(unsafe) let unsafeBuffer = buffer
        loop.handle.task {
            while let count = try? await connection.read(into: unsafeBuffer), count > 0 {
                let bytes = UnsafeMutableRawBufferPointer(rebasing: unsafeBuffer[..<count])
                Uppercase.apply(bytes)
                do { try await connection.write(UnsafeRawBufferPointer(bytes)) } catch { return }
            }
        }
    }

    deinit {
        close(client)
        buffer.deallocate()
    }

    @inline(__always)
    func roundTrip() -> Bool {
        payload.roundTrip(client) {
            try! loop.runOnce(timeout: .zero)
            loopIterations += 1
        }
    }
}

/// How many `runOnce` calls a round trip took (1 when one wake-up serves it).
let loopIterationsMetric = BenchmarkMetric.custom("runOnce calls", polarity: .prefersSmaller, useScalingFactor: true)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .perOperation(maxDuration: .seconds(2), maxIterations: 2_000)

    Benchmark(
        "EventLoop<EpollSelector> + TCPConnection, 64 B round trip",
        configuration: .init(metrics: Benchmark.defaultConfiguration.metrics + [loopIterationsMetric])
    ) { (benchmark: Benchmark, fixture: ReactorFixture) in
        fixture.loopIterations = 0
        for _ in benchmark.scaledIterations where !fixture.roundTrip() {
            benchmark.error("round trip failed (close reason: \(String(describing: fixture.handler.closeReason)))")
            return
        }
        benchmark.stopMeasurement()
        benchmark.measurement(loopIterationsMetric, fixture.loopIterations)
    } setup: {
        let fixture = try ReactorFixture()
        // Warm-up outside the measurement: first-use allocations (selector
        // tables, ready-key storage) happen here.
        for _ in 0..<100 where !fixture.roundTrip() { throw FixtureError(description: "warm-up round trip failed") }
        fixture.loopIterations = 0
        return fixture
    }

    Benchmark(
        "EventLoop<EpollSelector> + AsyncTCPConnection (a task on the loop), 64 B round trip",
        configuration: .init(metrics: Benchmark.defaultConfiguration.metrics + [loopIterationsMetric])
    ) { (benchmark: Benchmark, fixture: AsyncFixture) in
        fixture.loopIterations = 0
        for _ in benchmark.scaledIterations where !fixture.roundTrip() {
            benchmark.error("async round trip failed")
            return
        }
        benchmark.stopMeasurement()
        benchmark.measurement(loopIterationsMetric, fixture.loopIterations)
    } setup: {
        let fixture = try AsyncFixture()
        // Warm-up: the task starts, its first reads and waits happen here.
        for _ in 0..<100 where !fixture.roundTrip() { throw FixtureError(description: "warm-up round trip failed") }
        fixture.loopIterations = 0
        return fixture
    }

    Benchmark("syscall floor (write, epoll_wait, recv, send, read), 64 B round trip") {
        (benchmark: Benchmark, fixture: SyscallFixture) in
        for _ in benchmark.scaledIterations where !fixture.roundTrip() {
            benchmark.error("round trip failed")
            return
        }
    } setup: {
        let fixture = try SyscallFixture()
        for _ in 0..<100 where !fixture.roundTrip() { throw FixtureError(description: "warm-up round trip failed") }
        return fixture
    }

    Benchmark("EventLoop.enqueue + runOnce(timeout: .zero), one deferred body per iteration") {
        (benchmark: Benchmark, fixture: DeferredFixture) in
        for _ in benchmark.scaledIterations {
            fixture.loop.enqueue(fixture.body)
            try! fixture.loop.runOnce(timeout: .zero)
        }
        benchmark.stopMeasurement()
        if deferredRuns == 0 { benchmark.error("the deferred body never ran") }
    } setup: {
        let fixture = try DeferredFixture()
        // Warm-up: the arrays reach their capacity here.
        for _ in 0..<100 {
            fixture.loop.enqueue(fixture.body)
            try fixture.loop.runOnce(timeout: .zero)
        }
        return fixture
    }
}

/// How many deferred bodies ran.
nonisolated(unsafe) var deferredRuns = 0

/// A loop with nothing registered but its own wake-up.
final class DeferredFixture: @unchecked Sendable {
    // @unchecked: each benchmark runs on one thread at a time.
    let loop: EventLoop<EpollSelector<Int>>
    /// The deferred body, made once: a closure made per iteration could
    /// allocate its context, the caller's cost and not the loop's.
    let body: () -> Void = { deferredRuns += 1 }

    init() throws {
        loop = try EventLoop(selector: try EpollSelector<Int>())
    }
}
