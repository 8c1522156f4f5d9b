// Helpers shared by the test targets that run the package's executables as
// child processes (SeedServerTests, UpperEchoCLITests, ReliabilityTests), and
// the one bounded wait every target uses.
import Foundation
import Synchronization
import Syscalls

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns
/// whether it held. Every wait in these tests is bounded by one of these. The
/// default is generous: a wait ends as soon as its condition holds, and the
/// children built with a sanitizer run many times slower than a plain build.
public func waitUntil(timeout: Duration = .seconds(30), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        if ContinuousClock.now >= deadline { return false }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return true
}

/// Collects everything written to a pipe, on a background thread, so that
/// the child never blocks on a full pipe and a test never blocks on a read.
public final class OutputCollector: Sendable {
    private let bytes = Lock<[UInt8]>([])
    private let ended = Atomic<Bool>(false)

    /// Starts a thread that reads `handle` until its end.
    public init(reading handle: FileHandle) {
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
    public var text: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }

    /// The complete lines read so far.
    public var lines: [Substring] { text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() }

    /// Whether the writer closed the pipe (the child exited).
    public var reachedEnd: Bool { ended.load(ordering: .acquiring) }
}

/// One of the package's executables (`upper-echo`, `echo-load`) running as a
/// child process, its standard output and error collected. Call `stop()` in
/// a `defer`: it ends the child whatever happened.
public final class ChildProcess {
    /// The running process.
    public let process = Process()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    /// What the child writes to its standard output.
    public let output: OutputCollector
    /// What the child writes to its standard error.
    public let errors: OutputCollector

    /// The path of `name`, built next to the test bundle: the test target
    /// depends on the executables, so SwiftPM puts them in the same directory.
    public static func executablePath(_ name: String) throws -> String {
        let testExecutable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        return URL(fileURLWithPath: testExecutable).deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// Starts `name arguments...`; with `descriptorLimit`, through
    /// `bash -c 'ulimit -n LIMIT && exec name ...'` (same pid: `exec`); with
    /// `cpus`, through `taskset -c CPUS name ...` (same pid too).
    public init(_ name: String, _ arguments: [String], descriptorLimit: Int? = nil, cpus: String? = nil) throws {
        let path = try Self.executablePath(name)
        if let descriptorLimit {
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\"", path] + arguments
        } else if let cpus {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
            process.arguments = ["-c", cpus, path] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        output = OutputCollector(reading: stdoutPipe.fileHandleForReading)
        errors = OutputCollector(reading: stderrPipe.fileHandleForReading)
        try Self.runWithEmptySignalMask(process, name: name)
    }

    /// Starts `process` from a new thread whose signal mask is empty. A child
    /// inherits the mask of the thread that spawns it, and the test runner's
    /// threads block SIGTERM among others.
    public static func runWithEmptySignalMask(_ process: Process, name: String) throws {
        let outcome = Lock<Result<Void, SpawnError>?>(nil)
        Thread {
            var empty = sigset_t()  // all bits clear: no signal blocked
            _ = system_pthread_sigmask(SIG_SETMASK, &empty, nil)
            let result = Result { try process.run() }.mapError { SpawnError(description: "\($0)") }
            outcome.withLock { $0 = result }
        }.start()
        guard waitUntil(timeout: .seconds(60), { outcome.withLock { $0 != nil } }) else {
            throw SpawnError(description: "\(name) did not start within 60 s")
        }
        if case .failure(let error) = outcome.withLock({ $0 })! { throw error }
    }

    /// The child's process ID.
    public var pid: pid_t { process.processIdentifier }
    /// Whether the child is still running.
    public var isRunning: Bool { process.isRunning }

    /// Sends `signal` to the child if it still runs.
    public func send(_ signal: CInt) {
        if process.isRunning { _ = system_kill(pid, signal) }
    }

    /// Waits (bounded) for the child to exit by itself.
    public func waitForExit(timeout: Duration = .seconds(60)) -> Bool {
        waitUntil(timeout: timeout) { !process.isRunning }
    }

    /// Whether the child exited normally with `status` (not by a signal).
    public func exited(with status: CInt) -> Bool {
        !process.isRunning && process.terminationReason == .exit && process.terminationStatus == status
    }

    /// How the child ended, for messages.
    public var termination: String {
        if process.isRunning { return "still running" }
        return process.terminationReason == .exit
            ? "exit \(process.terminationStatus)" : "signal \(process.terminationStatus)"
    }

    /// How the process ended, then the last lines it wrote on standard
    /// error: what a test prints when the exit status is not the expected one.
    public var exitReport: String {
        let tail = errors.lines.suffix(20).joined(separator: "\n")
        return "\(termination); the end of its stderr:\n\(tail)"
    }

    /// SIGTERM, then SIGKILL if the child still runs after `grace`; returns
    /// whether SIGTERM alone was enough.
    @discardableResult
    public func stop(grace: Duration = .seconds(5)) -> Bool {
        send(SIGTERM)
        if waitForExit(timeout: grace) { return true }
        send(SIGKILL)
        _ = waitForExit()
        return false
    }

    /// SIGKILL, and a bounded wait for the end.
    public func kill() {
        send(SIGKILL)
        _ = waitForExit()
    }
}

/// Why a child could not be started or did not behave.
public struct SpawnError: Error, CustomStringConvertible {
    /// What went wrong.
    public var description: String

    /// Creates an error with its message.
    public init(description: String) {
        self.description = description
    }
}
