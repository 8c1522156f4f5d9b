import Foundation
import Syscalls

/// One of the package's servers (`upper-echo`, `seed-server`) running as a
/// child process, with what tests read about it: its `listening on` line,
/// its output, its `stats` counters (SIGHUP) and final `stopped` line, and
/// from `/proc` its descriptors, memory and CPU time. Call `stop()` in a
/// `defer`.
public final class ServerProcess {
    /// The child process.
    public let child: ChildProcess
    /// The process, for its termination status.
    public var process: Process { child.process }
    /// What the server wrote on standard output.
    public var output: OutputCollector { child.output }
    /// What the server wrote on standard error.
    public var errors: OutputCollector { child.errors }
    /// The server's process ID.
    public var pid: pid_t { child.pid }
    /// Whether the server still runs.
    public var isRunning: Bool { child.isRunning }

    /// Starts `executable arguments...`, without waiting for it to listen;
    /// with `descriptorLimit`, under `ulimit -n LIMIT` (same pid: `exec`).
    /// With `cpus`, pinned to those CPUs (`taskset -c CPUS`).
    public init(_ executable: String, _ arguments: [String], descriptorLimit: Int? = nil, cpus: String? = nil) throws {
        child = try ChildProcess(executable, arguments, descriptorLimit: descriptorLimit, cpus: cpus)
    }

    /// Starts `upper-echo --port 0 arguments...` and waits (bounded) for its
    /// `listening on` line; throws, with its standard error, if none comes.
    public static func upperEcho(_ arguments: [String] = [], descriptorLimit: Int? = nil) throws -> ServerProcess {
        let server = try ServerProcess("upper-echo", ["--port", "0"] + arguments, descriptorLimit: descriptorLimit)
        guard server.waitForPort() != nil else {
            server.child.kill()
            throw SpawnError(description: "upper-echo printed no listening line; stderr: \(server.errors.text)")
        }
        return server
    }

    /// The `listening on HOST:PORT` line (upper-echo adds ` (BACKEND)`), once
    /// it is complete.
    public var listeningLine: (host: String, port: UInt16, backend: String?)? {
        guard let line = output.lines.first(where: { $0.hasPrefix("listening on ") }),
            output.text.contains(line + "\n")
        else { return nil }
        let address = line.dropFirst("listening on ".count).split(separator: " ", maxSplits: 1)
        guard let first = address.first, let colon = first.lastIndex(of: ":"),
            let port = UInt16(first[first.index(after: colon)...])
        else { return nil }
        var host = first[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        let backend = address.count > 1 ? String(address[1].dropFirst().dropLast()) : nil
        return (String(host), port, backend)
    }

    /// The listening port; 0 before the line came (see `waitForPort`).
    public var port: UInt16 { listeningLine?.port ?? 0 }

    /// Waits (bounded) for the listening line and returns its port, or `nil`
    /// if the server exited or printed none.
    public func waitForPort(timeout: Duration = .seconds(60)) -> UInt16? {
        _ = waitUntil(timeout: timeout) { listeningLine != nil || !process.isRunning }
        return listeningLine?.port
    }

    /// How many lines of the output are exactly `line`.
    public func count(_ line: String) -> Int {
        output.text.split(separator: "\n", omittingEmptySubsequences: false).filter { $0 == line }.count
    }

    /// Sends `signal` to the server if it still runs.
    public func send(_ signal: CInt) { child.send(signal) }

    /// Asks for a `stats` line with SIGHUP and returns its counters by name,
    /// or `nil` if no new line came within 30 s.
    public func stats() -> [String: Int]? { child.stats() }

    /// The counters of the `stopped` line upper-echo logs on standard error
    /// as it exits, once the process has ended.
    public func finalStats() -> [String: Int]? {
        guard waitUntil({ errors.reachedEnd }),
            let line = errors.lines.last(where: { $0.contains(" stopped open=") })
        else { return nil }
        return statsCounters(in: line)
    }

    /// The descriptors the server holds: the entries of `/proc/PID/fd`.
    public func openDescriptors() -> [CInt] { child.openDescriptors() }

    /// How many descriptors the server holds.
    public func openDescriptorCount() -> Int { openDescriptors().count }

    /// Polls (bounded) until the server holds `count` descriptors; returns
    /// the last count seen.
    public func waitForDescriptorCount(_ count: Int, timeout: Duration = .seconds(30)) -> Int {
        var seen = openDescriptorCount()
        _ = waitUntil(timeout: timeout) {
            seen = openDescriptorCount()
            return seen == count
        }
        return seen
    }

    /// Resident memory now (`VmRSS`), in KiB.
    public func residentKilobytes() -> Int? { statusField("VmRSS:") }

    /// The peak resident memory so far (`VmHWM`), in KiB.
    public func peakResidentKilobytes() -> Int? { statusField("VmHWM:") }

    private func statusField(_ name: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            return Int(line.dropFirst(name.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }

    /// The CPU time the server has used so far.
    public func cpuTime() -> Duration? { child.cpuTime() }

    /// The CPU the server uses during `window`, as a fraction of one core.
    public func cpuLoad(over window: Duration = .seconds(1)) -> Double? { child.cpuLoad(over: window) }

    /// Waits (bounded) for the server to exit by itself.
    public func waitForExit(timeout: Duration = .seconds(60)) -> Bool { child.waitForExit(timeout: timeout) }

    /// Whether the server exited normally with `status`.
    public func exited(with status: CInt) -> Bool { child.exited(with: status) }

    /// How the server ended, and the end of its standard error.
    public var exitReport: String { child.exitReport }

    /// SIGTERM, then SIGKILL if the server still runs after 5 s; returns
    /// whether SIGTERM alone was enough.
    @discardableResult
    public func stop() -> Bool { child.stop() }
}

/// How an upper-echo under test spreads its work, and which API serves
/// it: one loop, or two loops under each balance, each through callbacks
/// and through async/await (`--api async`). Tests of the server's
/// behaviour run under each.
public enum ServerLayout: String, Sendable, CustomStringConvertible {
    /// `--loops 1`: one loop on the main thread.
    case oneLoop = "one loop"
    /// `--loops 2 --balance reuseport`.
    case reusePort = "2 loops, reuseport"
    /// `--loops 2 --balance acceptor`.
    case acceptor = "2 loops, acceptor"
    /// `--loops 1 --api async`.
    case asyncOneLoop = "one loop, async"
    /// `--loops 2 --balance reuseport --api async`.
    case asyncReusePort = "2 loops, reuseport, async"
    /// `--loops 2 --balance acceptor --api async`.
    case asyncAcceptor = "2 loops, acceptor, async"

    /// The callbacks' layouts: one loop, and two under each balance.
    public static let callbacks: [ServerLayout] = [.oneLoop, .reusePort, .acceptor]

    /// The same three layouts through `--api async`.
    public static let async: [ServerLayout] = [.asyncOneLoop, .asyncReusePort, .asyncAcceptor]

    /// Both APIs under every layout: what every subprocess test of the
    /// server's behaviour runs under.
    public static let everyAPI: [ServerLayout] = callbacks + async

    /// The command-line arguments that ask for it.
    public var arguments: [String] {
        let loops: [String] =
            switch self {
            case .oneLoop, .asyncOneLoop: ["--loops", "1"]
            case .reusePort, .asyncReusePort: ["--loops", "2", "--balance", "reuseport"]
            case .acceptor, .asyncAcceptor: ["--loops", "2", "--balance", "acceptor"]
            }
        return loops + (isAsync ? ["--api", "async"] : [])
    }

    /// Whether the async API serves the connections.
    public var isAsync: Bool {
        switch self {
        case .asyncOneLoop, .asyncReusePort, .asyncAcceptor: true
        case .oneLoop, .reusePort, .acceptor: false
        }
    }

    /// How many loops.
    public var loops: Int { self == .oneLoop || self == .asyncOneLoop ? 1 : 2 }

    /// Whether new connections wait in one backlog, first in, first out:
    /// with several `SO_REUSEPORT` sockets each has its own.
    public var hasOneBacklog: Bool { self != .reusePort && self != .asyncReusePort }

    /// The layout's name.
    public var description: String { rawValue }
}
