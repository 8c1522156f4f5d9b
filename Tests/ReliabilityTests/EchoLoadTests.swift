import CEpollShim
import Foundation
import Syscalls
import TestSupport
import Testing

@testable import echo_load

/// echo-load is the judge of every figure in BENCHMARKS.md and of scenario 1
/// here: these tests point it at servers that misbehave on purpose and check
/// that it notices, counts and fails.
@Suite("echo-load against faulty servers", .timeLimit(.minutes(2)))
struct EchoLoadTests {
    /// Each fault, and the counters of which at least one must see it.
    static let faults: [(FaultyServer.Fault, [String])] = [
        (.echoUnchanged, ["mismatches"]),  // replies not upper-cased
        (.resetAfterFirstRead, ["resets", "unexpected_eofs"]),  // a reset mid-exchange
        (.closeAfterFirstRead, ["unexpected_eofs"]),  // a close with replies owed
        (.neverReply, ["unanswered"]),  // accepts and reads, but stays silent
    ]

    @Test("a server that gets the service wrong is noticed and counted, and the exit status is 1", arguments: faults)
    func faultsFail(fault: FaultyServer.Fault, counters: [String]) throws {
        let server = try FaultyServer(fault)
        defer { server.close() }
        // The default time-outs (5 s for a connect and its probe, 30 s for a
        // first reply), which a reply, a reset or a close ends early. Only
        // the silent server's first-reply wait is short: its end is what
        // counts the connection as unanswered, however long it is.
        let firstReplyTimeout = if case .neverReply = fault { "0.5" } else { "30" }
        let (load, report) = try runEchoLoad(
            port: server.port,
            ["--connections", "1", "--duration", "1", "--first-reply-timeout", firstReplyTimeout])
        #expect(counters.map { number(report, $0) }.reduce(0, +) >= 1, "\(counters) in \(report)")
        #expect(load.child.exited(with: 1), "\(load.child.termination)")
    }

    @Test("nothing listening: the connect is retried, then counted as failed, and the exit status is 1")
    func refusedConnectsFail() throws {
        // Bound but not listening: connects to it are refused, and no other
        // test can take the port while it is held.
        let fd = try system_socket(AF_INET, CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)).get()
        defer { _ = system_close(fd) }
        try system_bind(fd, SocketAddress(host: "127.0.0.1", port: 0)!).get()
        let port = try system_getsockname(fd).get().port
        let (load, report) = try runEchoLoad(port: port, ["--connections", "1", "--duration", "1"])
        #expect(number(report, "failed_connects") == 1)
        #expect(number(report, "connect_retries") >= 1)
        #expect(load.child.exited(with: 1), "\(load.child.termination)")
    }

    @Test("a connection the server serves late does not count as starved: the window waits for its first reply")
    func windowWaitsForEveryFirstReply() throws {
        // The server accepts the second connection 2 s after the first; the
        // warm-up asked for is 0.2 s and the window 1 s. Counted from 0.2 s,
        // the late connection would have no reply in the window.
        let server = try FaultyServer(.acceptSecondAfter(.seconds(2)))
        defer { server.close() }
        let started = ContinuousClock.now
        let (load, report) = try runEchoLoad(
            port: server.port, ["--connections", "2", "--warmup", "0.2", "--duration", "1"])
        #expect(load.child.exited(with: 0), "\(load.child.termination)")
        #expect(number(report, "min_conn_msgs") >= 1, "the late connection was counted as starved")
        #expect(ContinuousClock.now - started >= .seconds(3), "the window did not wait for the late connection")
    }

    @Test("many connects at once never overflow the server's accept queue: at most 256 await their first reply")
    func connectsNeverOverflowTheAcceptQueue() throws {
        // The kernel completes a connect as soon as it queues the connection,
        // whatever the server's pace: 600 connects, 256 at a time, would fill
        // a queue of 300 that the server drains at one accept per 2 ms. It
        // starts once 200 are queued, so that it is behind however slowly
        // echo-load connects here.
        let backlog = 300
        let server = try FaultyServer(.acceptEvery(.milliseconds(2), startingAt: 200), backlog: CInt(backlog))
        defer { server.close() }
        let (load, report) = try runEchoLoad(
            port: server.port, ["--connections", "600", "--warmup", "0", "--duration", "0.5"])
        #expect(load.child.exited(with: 0), "\(load.child.termination)")
        #expect(number(report, "min_conn_msgs") >= 1, "\(report)")
        let peak = server.peakAcceptQueue
        #expect(peak >= 128, "the accept queue peaked at \(peak): the server never fell behind, the test proved little")
        #expect(peak <= 256, "the accept queue peaked at \(peak) of \(backlog)")
    }
}

/// Runs echo-load to its end and returns it with its JSON report.
private func runEchoLoad(port: UInt16, _ arguments: [String]) throws -> (EchoLoadProcess, [String: Any]) {
    let load = try EchoLoadProcess(port: port, arguments)
    guard load.child.waitForExit(timeout: .seconds(60)) else {
        load.child.kill()
        throw SpawnError(description: "echo-load did not end; stderr: \(load.child.errors.text.suffix(500))")
    }
    guard let report = load.report() else {
        throw SpawnError(description: "no JSON report; stderr: \(load.child.errors.text.suffix(500))")
    }
    return (load, report)
}

private func number(_ report: [String: Any], _ key: String) -> Double {
    EchoLoadProcess.number(report, key) ?? -1
}

/// A blocking server on 127.0.0.1 that gets the service wrong in one chosen
/// way. Each connection is served on a thread of its own.
final class FaultyServer: @unchecked Sendable {
    enum Fault: Sendable, CustomTestStringConvertible {
        /// Sends every byte back as it came, not upper-cased.
        case echoUnchanged
        /// Reads once, then closes with `SO_LINGER` 0: a reset.
        case resetAfterFirstRead
        /// Reads once, then closes gracefully without replying.
        case closeAfterFirstRead
        /// Reads everything and never replies.
        case neverReply
        /// Serves correctly, but accepts the second connection only after
        /// `delay` (the kernel completes its handshake meanwhile).
        case acceptSecondAfter(Duration)
        /// Serves correctly, but accepts one connection per `interval`, from
        /// the moment `startingAt` connections are queued (or 30 s passed).
        case acceptEvery(Duration, startingAt: Int)

        var testDescription: String {
            switch self {
            case .echoUnchanged: "echoes without upper-casing"
            case .resetAfterFirstRead: "resets after the first read"
            case .closeAfterFirstRead: "closes after the first read"
            case .neverReply: "never replies"
            case .acceptSecondAfter(let delay): "accepts the second connection after \(delay)"
            case .acceptEvery(let interval, let start): "accepts one connection per \(interval) from \(start) queued"
            }
        }
    }

    let port: UInt16
    private let listener: CInt
    private let peakQueue = Lock(0)

    /// The longest the accept queue was, seen before each accept: how many
    /// connections the kernel had completed that the server had not yet
    /// accepted.
    var peakAcceptQueue: Int { peakQueue.withLock { $0 } }

    init(_ fault: Fault, backlog: CInt = 16) throws {
        listener = try system_socket(AF_INET, CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)).get()
        try system_bind(listener, SocketAddress(host: "127.0.0.1", port: 0)!).get()
        try system_listen(listener, backlog).get()
        port = try system_getsockname(listener).get().port
        let listener = self.listener
        let peakQueue = self.peakQueue
        Thread {
            var accepted = 0
            if case .acceptEvery(_, let start) = fault {
                let deadline = ContinuousClock.now + .seconds(30)
                while Self.acceptQueueLength(listener) < start && ContinuousClock.now < deadline {
                    Thread.sleep(forTimeInterval: 0.001)
                }
            }
            while true {
                let queued = Self.acceptQueueLength(listener)
                peakQueue.withLock { $0 = max($0, queued) }
                guard case .success(let fd) = system_accept4(listener, CInt(SOCK_CLOEXEC.rawValue)) else { return }
                accepted += 1
                let thread = Thread { Self.serve(fd, fault) }
                thread.stackSize = 1 << 18
                thread.start()
                switch fault {
                case .acceptSecondAfter(let delay) where accepted == 1:
                    Thread.sleep(forTimeInterval: seconds(delay))
                case .acceptEvery(let interval, _):
                    Thread.sleep(forTimeInterval: seconds(interval))
                default:
                    break
                }
            }
        }.start()
    }

    /// The connections waiting in a listening socket's accept queue: for a
    /// listener, `TCP_INFO`'s `tcpi_unacked` (0 if it cannot be read).
    private static func acceptQueueLength(_ listener: CInt) -> Int {
        var info = tcp_info()
        var length = socklen_t(MemoryLayout<tcp_info>.size)
        guard getsockopt(listener, CInt(IPPROTO_TCP), TCP_INFO, &info, &length) == 0 else { return 0 }
        return Int(info.tcpi_unacked)
    }

    /// Stops accepting (the blocked `accept` returns with an error).
    func close() {
        _ = system_shutdown(listener, CInt(SHUT_RDWR))
        _ = system_close(listener)
    }

    private static func serve(_ fd: CInt, _ fault: Fault) {
        defer { _ = system_close(fd) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { system_recv(fd, $0) }
            guard case .success(let n) = count, n > 0 else { return }
            switch fault {
            case .resetAfterFirstRead:
                _ = system_setsockopt_linger(fd, on: true, seconds: 0)
                return
            case .closeAfterFirstRead:
                return
            case .neverReply:
                continue
            case .echoUnchanged:
                break
            case .acceptSecondAfter, .acceptEvery:
                for index in 0..<n { buffer[index] = pythonUpper(buffer[index]) }
            }
            var sent = 0
            while sent < n {
                let result = buffer.withUnsafeBytes { system_send(fd, UnsafeRawBufferPointer(rebasing: $0[sent..<n])) }
                guard case .success(let m) = result else { return }
                sent += m
            }
        }
    }
}

/// echo-load's own bookkeeping, in process: the oracle it checks replies
/// against, and the per-state counts of its connections.
@Suite("echo-load's oracle and connection counts", .timeLimit(.minutes(2)))
struct EchoLoadBookkeepingTests {
    @Test("the oracle is the service's definition: a-z come back 0x20 lower, the other 230 bytes unchanged")
    func oracleIsTheDefinition() {
        let table = Payload.replyTable
        #expect(table.count == 256)
        #expect(table[0x61] == 0x41 && table[0x7A] == 0x5A, "a and z")
        #expect(table[0x60] == 0x60 && table[0x7B] == 0x7B, "the bytes just outside a-z")
        #expect(table[0x41] == 0x41 && table[0xE1] == 0xE1 && table[0xFF] == 0xFF, "upper case, Latin-1, 0xFF")
        let changed = (0..<256).filter { Int(table[$0]) != $0 }
        #expect(changed == Array(0x61...0x7A))
        #expect(changed.allSatisfy { Int(table[$0]) == $0 - 0x20 })
    }

    @Test("the expected replies are the pattern mapped byte by byte through the oracle, all 256 values sent")
    func expectedRepliesFollowTheOracle() {
        let payload = Payload(size: 64, seed: 7, span: 4096)
        var seen = Set<UInt8>()
        for offset in 0..<(payload.span + payload.size) {
            let sent = payload.pattern.load(fromByteOffset: offset, as: UInt8.self)
            let expected = payload.upper.load(fromByteOffset: offset, as: UInt8.self)
            #expect(expected == Payload.replyTable[Int(sent)], "offset \(offset): sent \(sent), expected \(expected)")
            seen.insert(sent)
        }
        #expect(seen.count == 256)
    }

    @Test("every move of a connection keeps the counts equal to a recount of the states")
    func movesKeepTheCountsExact() {
        let payload = Payload(size: 8, seed: 1, span: 64)
        // One connection per path through the states, each path from `.waiting`.
        let paths: [[ClientConnection.State]] = [
            [.connecting, .probing, .answered, .finished],  // served, then closed
            [.connecting, .probing, .unanswered, .answered],  // a probe that timed out, answered later
            [.probing, .finished],  // connected at once, closed before its first reply
            [.connecting, .waiting, .connecting, .failed],  // refused, retried, given up
            [.unanswered, .answered],  // open loop: no probe
            [.failed],  // no socket
            [],  // still queued
        ]
        var connections = paths.indices.map { ClientConnection(index: $0, payload: payload) }
        var counts = ConnectionCounts(connections: connections.count)
        for step in 0..<paths.map(\.count).max()! {
            for (index, path) in paths.enumerated() where step < path.count {
                #expect(connections[index].state.canMove(to: path[step]))
                connections[index].move(to: path[step], counts: &counts)
                #expect(counts == ConnectionCounts(recounting: connections), "step \(step), connection \(index)")
            }
        }
        #expect(counts.waiting == 1 && counts.connecting == 0 && counts.outstanding == 0)
        #expect(counts[.answered] == 2 && counts[.finished] == 2 && counts.failed == 2)
        #expect(counts.open == 2 && counts.awaitingFirstReply == 0 && counts.established == 4)
        #expect(!counts.connectsSettled, "one connection is still queued")
        // A closed connection never moves again.
        for state in ClientConnection.State.allCases {
            #expect(!ClientConnection.State.finished.canMove(to: state))
            #expect(!ClientConnection.State.failed.canMove(to: state))
        }
    }

    /// A run's final counts, after `run` returned: what the loop kept, and
    /// what the states add up to.
    private func runLoad(
        port: UInt16, connections: Int, connectTimeout: Double = 5, firstReplyTimeout: Double = 30
    ) -> (counts: ConnectionCounts, recount: ConnectionCounts, result: LoadResult)? {
        let plan = LoadPlan(
            target: SocketAddress(host: "127.0.0.1", port: port)!, connections: connections, size: 64, pipeline: 1,
            rate: nil, warmupSeconds: 0, durationSeconds: 0.2, connectTimeoutSeconds: connectTimeout,
            firstReplyTimeoutSeconds: firstReplyTimeout, seed: 1, serverPID: nil)
        guard var loop = try? LoadLoop(plan: plan, payload: Payload(size: plan.size, seed: plan.seed)) else {
            Issue.record("the load loop could not start")
            return nil
        }
        let result = loop.run()
        return (loop.counts, ConnectionCounts(recounting: loop.connections), result)
    }

    @Test("a served run: every connection answered, the counts equal to the states")
    func servedRunCounts() throws {
        let server = try FaultyServer(.acceptEvery(.zero, startingAt: 0))
        defer { server.close() }
        let run = try #require(runLoad(port: server.port, connections: 3))
        #expect(run.counts == run.recount)
        #expect(run.counts[.answered] == 3 && run.counts.open == 3 && run.counts.awaitingFirstReply == 0)
        #expect(run.result.established == 3 && run.result.errors.total == 0, "\(run.result.errors)")
    }

    @Test("connections closed before their first reply: finished, none open or awaiting a reply")
    func closedBeforeFirstReplyCounts() throws {
        let server = try FaultyServer(.closeAfterFirstRead)
        defer { server.close() }
        let run = try #require(runLoad(port: server.port, connections: 3))
        #expect(run.counts == run.recount)
        #expect(run.counts[.finished] == 3 && run.counts.open == 0 && run.counts.awaitingFirstReply == 0)
        #expect(run.result.established == 3 && run.result.errors.unexpectedEOFs == 3, "\(run.result.errors)")
    }

    @Test("probes that time out: the connections stay open, unanswered, and are counted so")
    func unansweredCounts() throws {
        let server = try FaultyServer(.neverReply)
        defer { server.close() }
        let run = try #require(runLoad(port: server.port, connections: 3, connectTimeout: 0.3, firstReplyTimeout: 0.3))
        #expect(run.counts == run.recount)
        #expect(run.counts[.unanswered] == 3 && run.counts.awaitingFirstReply == 3 && run.counts[.probing] == 0)
        #expect(run.result.established == 3 && run.result.errors.unanswered == 3, "\(run.result.errors)")
    }

    @Test("refused connects: retried, then failed, never established")
    func refusedCounts() throws {
        // Bound but not listening: connects to it are refused.
        let fd = try system_socket(AF_INET, CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)).get()
        defer { _ = system_close(fd) }
        try system_bind(fd, SocketAddress(host: "127.0.0.1", port: 0)!).get()
        let port = try system_getsockname(fd).get().port
        let run = try #require(runLoad(port: port, connections: 3))
        #expect(run.counts == run.recount)
        #expect(run.counts.failed == 3 && run.counts.established == 0)
        #expect(run.result.established == 0 && run.result.errors.failedConnects == 3, "\(run.result.errors)")
    }
}
