import Syscalls

/// Makes `calls` calls of the operation being measured, checking each one.
typealias Workload = (_ calls: Int) throws(BenchError) -> Void

/// How long to time a point, and in how many batches.
struct TimingPlan {
    /// Timed batches per workload; the median batch is reported.
    var batches: Int
    /// Calls per batch, or `nil` to size batches from the budget.
    var callsPerBatch: Int?
    /// Wall time for one point, both workloads together.
    var budgetNanoseconds: Int64
}

/// The cost of one call: the median over the batches, and the quartiles that
/// show how noisy the machine was.
struct CallCost {
    var median: Double
    var lowerQuartile: Double
    var upperQuartile: Double
    var callsPerBatch: Int

    init(perCall samples: [Double], callsPerBatch: Int) {
        let sorted = samples.sorted()
        median = Self.quantile(sorted, 0.5)
        lowerQuartile = Self.quantile(sorted, 0.25)
        upperQuartile = Self.quantile(sorted, 0.75)
        self.callsPerBatch = callsPerBatch
    }

    /// Linear interpolation between the closest ranks of `sorted`.
    private static func quantile(_ sorted: [Double], _ fraction: Double) -> Double {
        let position = fraction * Double(sorted.count - 1)
        let below = Int(position)
        let above = min(below + 1, sorted.count - 1)
        let weight = position - Double(below)
        return sorted[below] * (1 - weight) + sorted[above] * weight
    }
}

/// Times the library and the raw syscall in alternating batches, so that a
/// burst of load from other processes lands on both alike.
func timeAlternately(library: Workload, raw: Workload, plan: TimingPlan) throws(BenchError) -> (
    library: CallCost, raw: CallCost
) {
    let batchTarget = plan.budgetNanoseconds / Int64(2 * plan.batches)
    var libraryCalls = plan.callsPerBatch ?? 0
    var rawCalls = libraryCalls
    if plan.callsPerBatch == nil {
        libraryCalls = try calibrate(library, batchNanoseconds: batchTarget)
        rawCalls = try calibrate(raw, batchNanoseconds: batchTarget)
    } else {
        try library(libraryCalls)  // warm-up, untimed
        try raw(rawCalls)
    }
    var librarySamples: [Double] = []
    var rawSamples: [Double] = []
    for _ in 0..<plan.batches {
        librarySamples.append(Double(try elapsed(library, libraryCalls)) / Double(libraryCalls))
        rawSamples.append(Double(try elapsed(raw, rawCalls)) / Double(rawCalls))
    }
    return (
        CallCost(perCall: librarySamples, callsPerBatch: libraryCalls),
        CallCost(perCall: rawSamples, callsPerBatch: rawCalls)
    )
}

/// How many calls fill `batchNanoseconds`, found by doubling until a run
/// lasts at least 2 ms (which also warms caches and branch predictors).
private func calibrate(_ work: Workload, batchNanoseconds: Int64) throws(BenchError) -> Int {
    var calls = 1
    while true {
        let nanoseconds = try elapsed(work, calls)
        if nanoseconds >= 2_000_000 || calls >= 1 << 24 {
            let perCall = Double(nanoseconds) / Double(calls)
            return max(1, Int(Double(batchNanoseconds) / perCall))
        }
        calls *= 2
    }
}

/// The monotonic time `work` takes for `calls` calls.
private func elapsed(_ work: Workload, _ calls: Int) throws(BenchError) -> Int64 {
    let start = system_clock_gettime_monotonic()
    try work(calls)
    return system_clock_gettime_monotonic() - start
}
