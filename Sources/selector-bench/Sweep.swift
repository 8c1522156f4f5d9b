import Selectors
import SystemPackage

/// One backend at one N: its measured costs, or why it was not measured.
struct Point {
    var backend: SelectorKind
    var watched: Int
    var ready: Int
    var outcome: Outcome
}

/// What became of a point.
enum Outcome {
    /// The library's `select(timeout: .zero)` and the raw syscall beside it.
    case measured(library: CallCost, raw: CallCost)
    /// Not measured, and why.
    case skipped(String)
}

/// Every backend at every N, in order, with a progress line per point.
struct Sweep {
    let options: Options
    let limit: DescriptorLimit
    let plan: TimingPlan

    func run() throws(BenchError) -> [Point] {
        let cases = options.backends.flatMap { kind in options.watched.map { (kind, $0) } }
        var points: [Point] = []
        for (index, (kind, watched)) in cases.enumerated() {
            standardError("[\(index + 1)/\(cases.count)] \(kind) N=\(watched) K=\(options.ready) ... ", newline: false)
            let outcome = try measure(kind, watched: watched)
            switch outcome {
            case .measured(let library, let raw):
                standardError("\(fixed(library.median)) ns/call (raw \(fixed(raw.median)))")
            case .skipped(let reason):
                standardError("skipped: \(reason)")
            }
            points.append(Point(backend: kind, watched: watched, ready: options.ready, outcome: outcome))
        }
        return points
    }

    private func measure(_ kind: SelectorKind, watched count: Int) throws(BenchError) -> Outcome {
        guard options.ready <= count else {
            return .skipped("more ready descriptors (\(options.ready)) than watched")
        }
        guard count <= limit.reachable else {
            return .skipped(
                "needs \(count) eventfds + \(DescriptorLimit.reserve) epolls above the \(limit.firstFree) open; "
                    + "RLIMIT_NOFILE \(limit.soft) allows N <= \(limit.reachable)"
            )
        }
        let watched: WatchedDescriptors
        do {
            watched = try WatchedDescriptors(count: count, readyCount: options.ready)
        } catch .system(let what, let errno) {
            return .skipped("\(what) failed: \(errno)")
        }
        defer { watched.close() }
        switch kind {
        case .epoll: return try measure(EpollSelector<Int>.self, watched, raw: RawEpoll.init)
        case .poll: return try measure(PollSelector<Int>.self, watched, raw: RawPoll.init)
        case .select: return try measure(SelectSelector<Int>.self, watched, raw: RawSelect.init)
        }
    }

    /// Registers every watched descriptor with a new selector of the concrete
    /// type given (never `any Selector`, so that what is timed is the library's
    /// own code path), checks one result in full, then times both workloads.
    private func measure<Backend>(
        _ type: BackendSelector<Backend, Int>.Type,
        _ watched: WatchedDescriptors,
        raw makeRaw: (WatchedDescriptors) throws(BenchError) -> some RawProbe
    ) throws(BenchError) -> Outcome {
        let selector: BackendSelector<Backend, Int>
        do { selector = try type.init() } catch { throw .selector("init", error) }
        defer { selector.close() }
        for (index, fd) in watched.all.enumerated() {
            do {
                try selector.register(FileDescriptor(rawValue: fd), interest: .read, data: index)
            } catch .descriptorOutOfRange(let fd, let limit) {
                return .skipped(
                    "descriptor \(fd.rawValue) >= FD_SETSIZE (\(limit)); select(2) cannot watch it "
                        + "(register threw SelectorError.descriptorOutOfRange)"
                )
            } catch {
                throw .selector("register(\(fd))", error)
            }
        }
        try verify(selector, watched)
        let raw = try makeRaw(watched)
        let expected = watched.ready.count
        let costs = try timeAlternately(
            library: { (calls) throws(BenchError) in try selectLoop(selector, calls: calls, expected: expected) },
            raw: { (calls) throws(BenchError) in try raw.run(calls) },
            plan: plan
        )
        return .measured(library: costs.library, raw: costs.raw)
    }

    /// Checks that one `select` reports exactly the ready eventfds, for `.read`.
    private func verify<Backend>(_ selector: BackendSelector<Backend, Int>, _ watched: WatchedDescriptors)
        throws(BenchError)
    {
        let keys: [ReadyKey<Int>]
        do { keys = try selector.select(timeout: .zero) } catch { throw .selector("select", error) }
        try expectSame(keys.map(\.key.fileDescriptor.rawValue), watched.ready, "\(Backend.self) select")
        for key in keys where key.ready != .read || watched.all[key.key.data] != key.key.fileDescriptor.rawValue {
            throw .wrongReadySet("\(Backend.self) select: wrong key \(key)", found: [], expected: watched.ready)
        }
    }
}

/// The timed loop: the array-returning `select(timeout: .zero)`, Python's
/// `selector.select(0)`, with its count checked on every call.
private func selectLoop<Backend>(_ selector: BackendSelector<Backend, Int>, calls: Int, expected: Int)
    throws(BenchError)
{
    for _ in 0..<calls {
        let count: Int
        do { count = try selector.select(timeout: .zero).count } catch { throw .selector("select", error) }
        guard count == expected else { throw .wrongReadyCount("\(Backend.self) select", count, expected) }
    }
}
