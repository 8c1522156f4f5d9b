import CEpollShim
import Foundation
import Syscalls
import TestSupport
import Testing

/// echo-load's replaced connections: `--connection-lifetime` (short
/// connections), `--reconnect` (a connection the server ends cleanly is
/// replaced, not an error) and `--resend-unanswered` (what a server ended
/// without answering goes out again on the replacement).
@Suite("echo-load's replaced connections", .timeLimit(.minutes(2)))
struct ReconnectTests {
    /// A lifetime of 1 ends with the probe, in the connect phase.
    @Test(
        "--connection-lifetime closes each connection after its replies and opens a new one", arguments: [1, 5])
    func lifetimeCyclesConnections(lifetime: Int) throws {
        let server = try ServerProcess.upperEcho()
        defer { _ = server.stop() }
        let (load, report) = try runLoad(
            port: server.port,
            [
                "--connections", "4", "--pipeline", "2", "--connection-lifetime", "\(lifetime)", "--warmup", "0",
                "--duration", "1",
            ])
        #expect(load.child.exited(with: 0), "\(load.child.termination) \(report)")
        // More closes than the 4 first connections: their replacements closed too.
        let closes = value(report, "lifetime_closes")
        #expect(closes > 4, "\(report)")
        #expect(value(report, "reconnects") == 0 && value(report, "resent") == 0)
        // Each of them was a connection the server accepted and served.
        let stats = try #require(server.stats())
        #expect(Double(stats["accepted"] ?? 0) >= closes, "\(stats) \(report)")
        #expect(stats["resets"] == 0, "\(stats)")
    }

    @Test("--reconnect: a connection the server ends with no reply owed is replaced, not an error")
    func cleanEndsAreReplaced() throws {
        // One message per second (open loop), each connection ended by the
        // server right after its first reply: the client owes nothing for a
        // second, long after the end of input arrives.
        let server = try EndingServer(size: 16, repliesPerConnection: 1)
        defer { server.close() }
        let arguments = ["--connections", "1", "--size", "16", "--rate", "1", "--warmup", "0", "--duration", "2.5"]
        let (load, report) = try runLoad(port: server.port, arguments + ["--reconnect"])
        #expect(load.child.exited(with: 0), "\(load.child.termination) \(report)")
        #expect(value(report, "reconnects") >= 2, "\(report)")
        #expect(value(report, "unexpected_eofs") == 0 && value(report, "resent") == 0, "\(report)")
        // Without --reconnect the same end is an error.
        let (plain, plainReport) = try runLoad(port: server.port, arguments)
        #expect(plain.child.exited(with: 1), "\(plain.child.termination)")
        #expect(value(plainReport, "unexpected_eofs") >= 1, "\(plainReport)")
    }

    @Test("--reconnect: an end with replies owed stays an error; --resend-unanswered sends them again")
    func owedRepliesAreResent() throws {
        // Pipelined: the server answers 2 messages, then ends the connection
        // with at least 3 more sent and unanswered.
        let server = try EndingServer(size: 16, repliesPerConnection: 2)
        defer { server.close() }
        let arguments = [
            "--connections", "2", "--size", "16", "--pipeline", "4", "--warmup", "0", "--duration", "1", "--reconnect",
        ]
        let (strict, strictReport) = try runLoad(port: server.port, arguments)
        #expect(strict.child.exited(with: 1), "\(strict.child.termination)")
        #expect(value(strictReport, "unexpected_eofs") >= 1, "\(strictReport)")

        let (load, report) = try runLoad(port: server.port, arguments + ["--resend-unanswered"])
        #expect(load.child.exited(with: 0), "\(load.child.termination) \(report)")
        #expect(value(report, "reconnects") >= 2, "\(report)")
        #expect(value(report, "resent") >= 3 * value(report, "reconnects"), "\(report)")
        #expect(value(report, "mismatches") == 0 && value(report, "unexpected_eofs") == 0, "\(report)")
        // Every reply the server sent was checked byte by byte, resent
        // messages included, and each connection answered only 2.
        #expect(server.replies >= 2 * Int(value(report, "reconnects")))
    }
}

extension ReconnectTests {
    @Test("--reconnect: a connection the server ends cleanly while echo-load is still connecting is replaced too")
    func cleanEndsWhileConnecting() throws {
        // One reply per connection: the probe's, in the connect phase, when
        // nothing else is owed; then every later connection ends with
        // replies owed, which --resend-unanswered sends again.
        // The second connection is accepted 1 s late: the first one's end
        // comes while echo-load is still connecting.
        let server = try EndingServer(size: 16, repliesPerConnection: 1, secondAcceptDelay: .seconds(1))
        defer { server.close() }
        let (load, report) = try runLoad(
            port: server.port,
            [
                "--connections", "2", "--size", "16", "--pipeline", "2", "--warmup", "0", "--duration", "1",
                "--reconnect", "--resend-unanswered",
            ])
        #expect(load.child.exited(with: 0), "\(load.child.termination) \(report)")
        #expect(value(report, "unexpected_eofs") == 0 && value(report, "mismatches") == 0, "\(report)")
        #expect(value(report, "reconnects") >= 2, "\(report)")
    }
}

/// Runs echo-load to its end and returns it with its JSON report.
private func runLoad(port: UInt16, _ arguments: [String]) throws -> (EchoLoadProcess, [String: Any]) {
    let load = try EchoLoadProcess(port: port, arguments)
    guard load.child.waitForExit(timeout: .seconds(90)) else {
        load.child.kill()
        throw SpawnError(description: "echo-load did not end; stderr: \(load.child.errors.text.suffix(500))")
    }
    guard let report = load.report() else {
        throw SpawnError(description: "no JSON report; stderr: \(load.child.errors.text.suffix(500))")
    }
    return (load, report)
}

private func value(_ report: [String: Any], _ key: String) -> Double {
    EchoLoadProcess.number(report, key) ?? -1
}

/// A blocking server on 127.0.0.1 that answers `repliesPerConnection`
/// messages of `size` bytes on each connection, upper-cased, then sends end
/// of input at once, and reads and drops whatever comes after it until the
/// client closes: what a draining server does to a client that keeps
/// sending. Each connection is served on a thread of its own.
final class EndingServer: @unchecked Sendable {
    let port: UInt16
    private let listener: CInt
    private let answered = Lock(0)

    /// Replies sent in all.
    var replies: Int { answered.withLock { $0 } }

    /// `secondAcceptDelay`: how long to wait before accepting the second
    /// connection (the kernel completes its handshake meanwhile).
    init(size: Int, repliesPerConnection: Int, secondAcceptDelay: Duration = .zero) throws {
        listener = try system_socket(AF_INET, CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)).get()
        try system_bind(listener, SocketAddress(host: "127.0.0.1", port: 0)!).get()
        try system_listen(listener, 64).get()
        port = try system_getsockname(listener).get().port
        let listener = self.listener
        let answered = self.answered
        Thread {
            var accepted = 0
            while case .success(let fd) = system_accept4(listener, CInt(SOCK_CLOEXEC.rawValue)) {
                accepted += 1
                if accepted == 2 { Thread.sleep(forTimeInterval: seconds(secondAcceptDelay)) }
                let thread = Thread {
                    Self.serve(fd, size: size, replies: repliesPerConnection, answered: answered)
                }
                thread.stackSize = 1 << 18
                thread.start()
            }
        }.start()
    }

    /// Stops accepting (the blocked `accept` returns with an error).
    func close() {
        _ = system_shutdown(listener, CInt(SHUT_RDWR))
        _ = system_close(listener)
    }

    private static func serve(_ fd: CInt, size: Int, replies: Int, answered: Lock<Int>) {
        defer { _ = system_close(fd) }
        var message = [UInt8](repeating: 0, count: size)
        for _ in 0..<replies {
            var filled = 0
            while filled < size {
                let result = message.withUnsafeMutableBytes {
                    system_recv(fd, UnsafeMutableRawBufferPointer(rebasing: $0[filled...]))
                }
                guard case .success(let count) = result, count > 0 else { return }
                filled += count
            }
            let reply = pythonUpper(message)
            guard (try? sendAll(reply, to: fd)) != nil else { return }
            answered.withLock { $0 += 1 }
        }
        _ = system_shutdown(fd, CInt(SHUT_WR))
        var drop = [UInt8](repeating: 0, count: 65536)
        while case .success(let count) = drop.withUnsafeMutableBytes({ system_recv(fd, $0) }), count > 0 {}
    }
}
