import Foundation
import Synchronization
import Syscalls

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns
/// whether it held. Every wait in these tests is bounded by one of these.
func waitUntil(timeout: Duration = .seconds(5), _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now >= deadline { return false }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return true
}

/// Collects everything written to a pipe, on a background thread, so that
/// the child never blocks on a full pipe and a test can wait for a line
/// without ever blocking on a read.
final class OutputCollector: Sendable {
    private let bytes = Mutex<[UInt8]>([])
    private let ended = Atomic<Bool>(false)

    init(reading handle: FileHandle) {
        let fd = handle.fileDescriptor
        Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: 65536)
            while case .success(let count) = chunk.withUnsafeMutableBytes({ system_read(fd, $0) }), count > 0 {
                bytes.withLock { $0.append(contentsOf: chunk[..<count]) }
            }
            ended.store(true, ordering: .releasing)
        }.start()
    }

    /// What was read so far, decoded leniently.
    var text: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }

    /// Whether the writer closed the pipe (the child exited).
    var reachedEnd: Bool { ended.load(ordering: .acquiring) }
}

/// The `seed-server` executable running as a child process, its output
/// collected. `stop()` must be called (with `defer`) once the test is done.
final class SeedServerProcess {
    let process = Process()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    let output: OutputCollector
    let errors: OutputCollector

    /// The executable SwiftPM built next to the test bundle: the test target
    /// depends on `seed-server`, so it is in the same build directory.
    static var executableURL: URL {
        get throws {
            let testExecutable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            return URL(fileURLWithPath: testExecutable).deletingLastPathComponent()
                .appendingPathComponent("seed-server")
        }
    }

    /// Starts `seed-server arguments...`.
    init(arguments: [String] = ["0"]) throws {
        process.executableURL = try Self.executableURL
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        output = OutputCollector(reading: stdoutPipe.fileHandleForReading)
        errors = OutputCollector(reading: stderrPipe.fileHandleForReading)
        try Self.runWithEmptySignalMask(process)
    }

    /// Starts `process` from a new thread whose signal mask is empty. A child
    /// inherits the mask of the thread that spawns it, and the test runner's
    /// threads block most signals, SIGTERM included: spawned from one of them,
    /// the server would ignore `terminate()` and outlive the test.
    private static func runWithEmptySignalMask(_ process: Process) throws {
        let outcome = SpawnOutcome()
        Thread {
            var empty = sigset_t()  // all bits clear: no signal blocked
            _ = system_sigprocmask(SIG_SETMASK, &empty, nil)
            outcome.finish(Result { try process.run() }.mapError { SpawnError(description: "\($0)") })
        }.start()
        guard waitUntil(timeout: .seconds(10), { outcome.result != nil }) else {
            throw SpawnError(description: "seed-server did not start within 10 s")
        }
        if case .failure(let error) = outcome.result { throw error }
    }

    /// Waits (at most `timeout`) for the `listening on 127.0.0.1:PORT` line
    /// and returns PORT, or `nil` if it never came.
    func waitForPort(timeout: Duration = .seconds(10)) -> UInt16? {
        var port: UInt16?
        _ = waitUntil(timeout: timeout) {
            port = Self.port(in: output.text)
            return port != nil || !process.isRunning
        }
        return port
    }

    static func port(in text: String) -> UInt16? {
        let prefix = "listening on 127.0.0.1:"
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }),
            text.contains(line + "\n")
        else { return nil }
        return UInt16(line.dropFirst(prefix.count))
    }

    /// How many lines of the output are exactly `line`.
    func count(_ line: String) -> Int {
        output.text.split(separator: "\n", omittingEmptySubsequences: false).filter { $0 == line }.count
    }

    /// Waits (at most `timeout`) for the process to exit by itself.
    func waitForExit(timeout: Duration = .seconds(10)) -> Bool {
        waitUntil(timeout: timeout) { !process.isRunning }
    }

    /// Sends SIGTERM and waits (bounded) for the process to end; returns
    /// whether it did.
    @discardableResult
    func stop() -> Bool {
        if process.isRunning { process.terminate() }
        return waitForExit()
    }
}

/// Why `seed-server` could not be started.
struct SpawnError: Error, CustomStringConvertible {
    var description: String
}

/// The result of `Process.run()` on the spawning thread.
private final class SpawnOutcome: Sendable {
    private let value = Mutex<Result<Void, SpawnError>?>(nil)
    func finish(_ result: Result<Void, SpawnError>) { value.withLock { $0 = result } }
    var result: Result<Void, SpawnError>? { value.withLock { $0 } }
}
