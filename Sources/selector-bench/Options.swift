import Selectors

/// What to measure and where to write it, from the command line.
struct Options {
    var backends: [SelectorKind] = SelectorKind.allCases
    var watched = [10, 100, 1000, 5000, 10000, 19000]
    var ready = 1
    /// Calls per timed batch; `nil` sizes batches from `budgetMilliseconds`.
    var repetitions: Int?
    /// Wall time for one point (library and raw syscall together).
    var budgetMilliseconds = 400
    var batches = 31
    var csvPath: String?
    var jsonPath: String?

    static let usage = """
        usage: selector-bench [options]

        Measures one select(timeout: .zero) call of each selector backend (and
        the bare syscall beside it) while N eventfds are watched and K of them
        are ready. Each figure is the median of the batches' ns per call.

        options:
          --backends LIST      backends, comma-separated (default epoll,poll,select)
          --watched LIST       watched descriptor counts (default 10,100,1000,5000,10000,19000)
          --ready K            ready descriptors per call, 1...1024 (default 1)
          --repetitions R      calls per timed batch (default: sized from --budget-ms)
          --budget-ms MS       time per point, library and raw together (default 400)
          --batches B          timed batches per figure; the median is reported (default 31)
          --csv PATH           write backend,watched,ready,ns_per_call,raw_ns_per_call
          --json PATH          write every point, skipped ones with their reason
          -h, --help           show this help
        """

    private static let flags: Set = [
        "--backends", "--watched", "--ready", "--repetitions", "--budget-ms", "--batches", "--csv", "--json",
    ]

    /// Parses `arguments` (without the program name).
    static func parse(_ arguments: [String]) throws(UsageError) -> Options {
        var options = Options()
        var remaining = arguments[...]
        while let flag = remaining.popFirst() {
            if flag == "-h" || flag == "--help" { throw .helpRequested }
            guard flags.contains(flag) else { throw .invalid("unknown option \(flag)") }
            guard let value = remaining.popFirst() else { throw .invalid("\(flag) needs a value") }
            switch flag {
            case "--backends": options.backends = try list(value, flag) { SelectorKind(rawValue: String($0)) }
            case "--watched": options.watched = try list(value, flag) { positive($0) }
            case "--ready": options.ready = try number(value, flag, in: 1...1024)
            case "--repetitions": options.repetitions = try number(value, flag, in: 1...100_000_000)
            case "--budget-ms": options.budgetMilliseconds = try number(value, flag, in: 1...600_000)
            case "--batches": options.batches = try number(value, flag, in: 1...10_000)
            case "--csv": options.csvPath = value
            case "--json": options.jsonPath = value
            default: throw .invalid("unknown option \(flag)")
            }
        }
        return options
    }

    private static func positive(_ text: Substring) -> Int? {
        guard let value = Int(text), value > 0 else { return nil }
        return value
    }

    private static func number(_ text: String, _ flag: String, in range: ClosedRange<Int>) throws(UsageError) -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw .invalid("\(flag) takes a whole number in \(range.lowerBound)...\(range.upperBound), not '\(text)'")
        }
        return value
    }

    private static func list<T>(_ text: String, _ flag: String, _ element: (Substring) -> T?) throws(UsageError)
        -> [T]
    {
        var values: [T] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let value = element(item) else { throw .invalid("\(flag): '\(item)' is not a valid element") }
            values.append(value)
        }
        return values
    }
}

/// Why the command line was not accepted.
enum UsageError: Error {
    case helpRequested
    case invalid(String)
}
