// `Epoll.poll(into:timeout: .zero)` with N registered eventfds, one of them
// ready: what one wait costs as the interest set grows (epoll's promise is
// that it does not), and that the caller-owned `EventBuffer` path allocates
// nothing; then the same through `EpollSelector.select(timeout: .zero)`,
// whose reused result array must not allocate in steady state either.
// Each iteration is 1,000 polls; the figures are per poll.
import Benchmark
import BenchmarkSupport
import LinuxEpoll
import Selectors

#if canImport(Glibc)
    import Glibc
#endif

/// An epoll instance watching `count` eventfds for input, one of them
/// signalled (and never read, so level-triggered epoll reports it on every
/// wait).
final class PollFixture: @unchecked Sendable {
    // @unchecked: each benchmark runs on one thread at a time.
    let epoll: Epoll
    let eventFDs: [EventFD]
    let events = Epoll.EventBuffer(capacity: 64)

    init(count: Int) throws {
        try raiseDescriptorLimit(to: count + 64)
        epoll = try Epoll()
        eventFDs = try (0..<count).map { _ in try EventFD() }
        for eventFD in eventFDs { try epoll.register(eventFD.fileDescriptor, events: .in) }
        eventFDs[count / 2].signal()
    }

    func close() {
        epoll.close()
        for eventFD in eventFDs { eventFD.close() }
    }
}

/// The same descriptors behind an `EpollSelector`.
final class SelectorFixture: @unchecked Sendable {
    let selector: EpollSelector<Int>
    let eventFDs: [EventFD]

    init(count: Int) throws {
        try raiseDescriptorLimit(to: count + 64)
        selector = try EpollSelector<Int>()
        eventFDs = try (0..<count).map { _ in try EventFD() }
        for (index, eventFD) in eventFDs.enumerated() {
            try selector.register(eventFD.fileDescriptor, interest: .read, data: index)
        }
        eventFDs[count / 2].signal()
    }

    func close() {
        selector.close()
        for eventFD in eventFDs { eventFD.close() }
    }
}

final class FixtureSlot: @unchecked Sendable {
    var fixture: PollFixture?
}

struct DescriptorLimitError: Error {
    let wanted: Int
}

/// Raises the soft `RLIMIT_NOFILE` to at least `wanted`, up to the hard limit.
func raiseDescriptorLimit(to wanted: Int) throws {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { throw DescriptorLimitError(wanted: wanted) }
    if limit.rlim_cur >= rlim_t(wanted) { return }
    guard limit.rlim_max >= rlim_t(wanted) else { throw DescriptorLimitError(wanted: wanted) }
    limit.rlim_cur = rlim_t(wanted)
    guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { throw DescriptorLimitError(wanted: wanted) }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .perOperation(maxDuration: .seconds(1), maxIterations: 2_000)

    for count in [10, 1_000, 10_000] {
        let current = FixtureSlot()
        Benchmark("poll(into:timeout: .zero), \(count) registered, 1 ready") {
            (benchmark: Benchmark, fixture: PollFixture) in
            var ready = 0
            for _ in benchmark.scaledIterations {
                ready &+= try! fixture.epoll.poll(into: fixture.events, timeout: .zero)
            }
            if ready != benchmark.scaledIterations.count {
                benchmark.error("expected 1 ready event per poll, got \(ready) in \(benchmark.scaledIterations.count)")
            }
        } setup: {
            let fixture = try PollFixture(count: count)
            current.fixture = fixture
            return fixture
        } teardown: {
            // The runner keeps the setup state; release the descriptors now.
            current.fixture?.close()
            current.fixture = nil
        }
    }

    for count in [10, 10_000] {
        let current = SelectorSlot()
        Benchmark("EpollSelector.select(timeout: .zero), \(count) registered, 1 ready") {
            (benchmark: Benchmark, fixture: SelectorFixture) in
            var ready = 0
            for _ in benchmark.scaledIterations {
                ready &+= try! fixture.selector.select(timeout: .zero).count
            }
            if ready != benchmark.scaledIterations.count {
                benchmark.error("expected 1 ready key per select, got \(ready) in \(benchmark.scaledIterations.count)")
            }
        } setup: {
            let fixture = try SelectorFixture(count: count)
            current.fixture = fixture
            return fixture
        } teardown: {
            current.fixture?.close()
            current.fixture = nil
        }
    }
}

final class SelectorSlot: @unchecked Sendable {
    var fixture: SelectorFixture?
}
