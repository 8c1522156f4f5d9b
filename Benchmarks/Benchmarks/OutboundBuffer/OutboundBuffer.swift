// `OutboundBuffer`, the queue of bytes a connection could not send yet: one
// operation is appending a 1 KiB tail and consuming 1 KiB in 256-byte chunks
// (what a socket that takes 256 bytes per send would do). Steady state, after
// the warm-up has grown the storage: the target is 0 mallocs per operation.
// Each iteration is 1,000 operations; the figures are per operation.
//
// - "drains": the queue empties on every operation (rewinds in place).
// - "4 KiB backlog": 4 KiB stay queued, so the read offset advances and the
//   buffer compacts every few operations (moves the live bytes to the front).
import Benchmark
import BenchmarkSupport
import Reactor

/// The buffer under test and the tail it appends, kept across iterations.
final class QueueFixture: @unchecked Sendable {
    // @unchecked: each benchmark runs on one thread at a time.
    var queue = OutboundBuffer()
    let tail: UnsafeMutableRawBufferPointer
    var checksum = 0

    init(backlog: Int) {
        tail = .allocate(byteCount: 1024, alignment: 16)
        for i in 0..<tail.count { tail[i] = UInt8(truncatingIfNeeded: i) }
        for _ in 0..<(backlog / tail.count) { queue.append(UnsafeRawBufferPointer(tail)) }
    }

    deinit { tail.deallocate() }

    /// Appends 1 KiB, then consumes 1 KiB in four sends of at most 256 bytes.
    @inline(__always)
    func operation() {
        queue.append(UnsafeRawBufferPointer(tail))
        for _ in 0..<4 {
            queue.consume { pending in
                let sent = min(pending.count, 256)
                checksum &+= Int(pending[sent - 1])  // touch the bytes, as a send would
                return sent
            }
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .perOperation(maxDuration: .seconds(1), maxIterations: 5_000)

    for (label, backlog) in [("drains", 0), ("4 KiB backlog", 4096)] {
        Benchmark("append 1 KiB + consume 4 x 256 B, \(label)") { (benchmark: Benchmark, fixture: QueueFixture) in
            for _ in benchmark.scaledIterations { fixture.operation() }
            blackHole(fixture.checksum)
            if fixture.queue.count != backlog {
                benchmark.error("expected \(backlog) bytes queued, found \(fixture.queue.count)")
            }
        } setup: {
            let fixture = QueueFixture(backlog: backlog)
            // Warm-up outside the measurement: the storage reaches its
            // steady-state capacity (and the compaction cycle its largest size).
            for _ in 0..<64 { fixture.operation() }
            return fixture
        }
    }
}
