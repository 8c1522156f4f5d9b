// The configuration the per-operation suites share (EchoRoundTrip, EpollPoll,
// OutboundBuffer): each iteration runs 1,000 operations, and the figures are
// per operation.
import Benchmark

extension Benchmark.Configuration {
    /// Wall clock, throughput and malloc counts per operation, in
    /// nanoseconds, with 1,000 operations per iteration (`scaledIterations`)
    /// and 5 warm-up iterations.
    ///
    /// No `cpuTotal`: it comes from /proc in 10 ms ticks, and reading it
    /// allocates inside the window the malloc counters measure.
    public static func perOperation(maxDuration: Duration, maxIterations: Int) -> Self {
        .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal],
            timeUnits: .nanoseconds,
            warmupIterations: 5,
            scalingFactor: .kilo,
            maxDuration: maxDuration,
            maxIterations: maxIterations
        )
    }
}
