// The upper-case transform in bytes per second: `Uppercase.apply` (a
// branch-free byte loop the compiler vectorizes) against a 64-bit SWAR
// version and a branching byte-at-a-time loop, over 64 B, 4 KiB and 64 KiB
// buffers.
//
// Every iteration transforms the same 256 KiB arena (it stays in L2), cut
// into buffers of the size under test, one call per buffer. Before each
// iteration, outside the measurement, the arena is restored from pristine
// echo-load-like bytes (mostly lower-case letters, every byte value present),
// so every pass does the real work: the byte loop's branch sees the same mix
// each time, never an already upper-cased buffer.
//
// `MB/s` is bytes transformed per microsecond; `throughput` counts arenas
// (256 KiB each) per second.
import Benchmark
import UpperEcho

#if canImport(Glibc)
    import Glibc
#endif

/// The work and the bytes it works on, kept across iterations.
final class Arena: @unchecked Sendable {
    // @unchecked: each benchmark runs on one thread at a time.
    static let size = 256 * 1024
    let bytes: UnsafeMutableRawBufferPointer
    let pristine: UnsafeMutableRawBufferPointer
    var checked = false

    init() {
        bytes = .allocate(byteCount: Self.size, alignment: 64)
        pristine = .allocate(byteCount: Self.size, alignment: 64)
        // SplitMix64: the same bytes on every run. 7 in 8 are a-z, the rest
        // any of the 256 values, as echo-load sends.
        var state: UInt64 = 0x5EED_0F_CA5E
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for i in 0..<Self.size {
            let r = next()
            pristine[i] = r & 7 == 0 ? UInt8(truncatingIfNeeded: r >> 8) : 0x61 + UInt8((r >> 8) % 26)
        }
        restore()
    }

    deinit {
        bytes.deallocate()
        pristine.deallocate()
    }

    func restore() {
        bytes.copyMemory(from: UnsafeRawBufferPointer(pristine))
    }

    /// Calls `transform` on each `chunk`-byte buffer of the arena, in order.
    @inline(__always)
    func forEachBuffer(of chunk: Int, _ transform: (UnsafeMutableRawBufferPointer) -> Void) {
        var offset = 0
        while offset < Self.size {
            transform(UnsafeMutableRawBufferPointer(rebasing: bytes[offset..<(offset + chunk)]))
            offset += chunk
        }
    }

    /// Whether the arena is the upper-cased pristine bytes.
    func isUpperCased() -> Bool {
        for i in 0..<Self.size where bytes[i] != Uppercase.apply(pristine[i]) { return false }
        return true
    }
}

/// The byte-at-a-time reference: one compare-and-branch per byte, storing
/// only the bytes that change.
@inline(__always)
func upperCaseByteAtATime(_ buffer: UnsafeMutableRawBufferPointer) {
    for i in buffer.indices {
        let b = buffer[i]
        if b >= 0x61 && b <= 0x7a { buffer[i] = b - 0x20 }
    }
}

/// The 64-bit SWAR version `Uppercase.apply` used before: eight bytes per
/// step with carries confined to each byte. Kept here as a comparison.
@inline(__always)
func upperCaseSWAR(_ buffer: UnsafeMutableRawBufferPointer) {
    guard var pointer = buffer.baseAddress else { return }
    var remaining = buffer.count
    let ones: UInt64 = 0x0101_0101_0101_0101
    while remaining >= 8 {
        let word = pointer.loadUnaligned(as: UInt64.self)
        let low7 = word & (ones &* 0x7F)
        let atLeastA = low7 &+ ones &* (0x80 - 0x61)
        let aboveZ = low7 &+ ones &* (0x80 - 0x7B)
        let lower = atLeastA & ~aboveZ & ~word & (ones &* 0x80)
        pointer.storeBytes(of: word ^ (lower >> 2), as: UInt64.self)
        pointer += 8
        remaining -= 8
    }
    while remaining > 0 {
        pointer.storeBytes(of: Uppercase.apply(pointer.load(as: UInt8.self)), as: UInt8.self)
        pointer += 1
        remaining -= 1
    }
}

@inline(__always)
func nanosecondsNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

let megabytesPerSecond = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    // No cpuTotal: it comes from /proc in 10 ms ticks, and reading it
    // allocates inside the window the malloc counters measure.
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, megabytesPerSecond, .mallocCountTotal],
        timeUnits: .nanoseconds,
        units: [.throughput: .count, megabytesPerSecond: .count],
        warmupIterations: 10,
        maxDuration: .seconds(1),
        maxIterations: 5_000
    )

    enum Variant: String, CaseIterable {
        case library = "Uppercase.apply"
        case swar = "SWAR"
        case byteLoop = "byte loop"
    }
    for (label, size) in [("64 B", 64), ("4 KiB", 4096), ("64 KiB", 65536)] {
        for variant in Variant.allCases {
            Benchmark("\(variant.rawValue) \(label)") { benchmark, arena in
                arena.restore()
                benchmark.startMeasurement()
                let start = nanosecondsNow()
                // One switch per pass, so that each loop is compiled with its
                // transform inlined: no call per buffer.
                switch variant {
                case .library: arena.forEachBuffer(of: size) { Uppercase.apply($0) }
                case .swar: arena.forEachBuffer(of: size) { upperCaseSWAR($0) }
                case .byteLoop: arena.forEachBuffer(of: size) { upperCaseByteAtATime($0) }
                }
                let elapsed = nanosecondsNow() - start
                benchmark.stopMeasurement()
                benchmark.measurement(megabytesPerSecond, Arena.size * 1_000 / Int(max(elapsed, 1)))
                if !arena.checked {
                    arena.checked = true
                    if !arena.isUpperCased() { benchmark.error("\(variant.rawValue) \(label): wrong result") }
                }
            } setup: {
                Arena()
            }
        }
    }
}
