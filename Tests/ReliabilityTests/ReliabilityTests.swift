import Foundation
import Syscalls
import TestSupport
import Testing

/// The reliability suite (RELIABILITY.md): the real `upper-echo` in a child
/// process, under load, faults and bad input, with one figure per scenario.
///
/// Each test prints one line starting with `FIGURE <scenario>:` so that a
/// run's output can be pasted into RELIABILITY.md, and asserts the
/// scenario's pass criterion. The short forms run by default (the whole
/// suite in a few minutes); `SWIFT_EPOLL_SOAK=1` runs the soak forms, the
/// same code with larger parameters. Serialized: several scenarios measure
/// the server's CPU time and memory, which a concurrent test would distort.
@Suite(.serialized, .timeLimit(.minutes(Soak.isEnabled ? 30 : 3)))
struct ReliabilityTests {}

/// Short or soak parameters.
enum Soak {
    /// Whether `SWIFT_EPOLL_SOAK=1` asks for the soak forms.
    static let isEnabled = ProcessInfo.processInfo.environment["SWIFT_EPOLL_SOAK"] == "1"

    /// `short` normally, `soak` under `SWIFT_EPOLL_SOAK=1`.
    static func pick<T>(short: T, soak: T) -> T { isEnabled ? soak : short }

    /// `short` or `soak`, for the FIGURE line.
    static var form: String { isEnabled ? "soak" : "short" }
}

/// Whether this build runs under AddressSanitizer or ThreadSanitizer (`swift
/// test --sanitize=...`), as the server then does too: their shadow memory,
/// quarantine of freed blocks and history buffers inflate resident memory
/// many times over, so memory bounds are reported but not asserted.
enum Sanitizer {
    static let isActive: Bool = {
        guard let process = dlopen(nil, RTLD_NOW) else { return false }
        return dlsym(process, "__asan_init") != nil || dlsym(process, "__tsan_init") != nil
    }()
}

/// Prints `FIGURE <scenario>: <figures>` on one line, flushed at once.
func figure(_ scenario: String, _ figures: String) {
    print("FIGURE \(scenario) (\(Soak.form)): \(figures)")
    system_fflush_stdout()
}

/// `value` with `digits` decimals.
func fixed(_ value: Double, _ digits: Int = 1) -> String {
    String(format: "%.\(digits)f", value)
}

/// Seconds of a `Duration`, as a `Double`.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
