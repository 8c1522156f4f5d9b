import Foundation
import Synchronization
import Syscalls
import TestSupport
import Testing

/// Integration tests: the real `seed-server` executable in a child process,
/// real TCP clients on 127.0.0.1. Serialized so that the many blocking
/// clients do not compete for the few cores of CI; every wait is bounded.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct SeedServerTests {
    /// Starts a server on a free port, runs `body` with it, checks that the
    /// server is still running afterwards, and always stops it.
    func withServer(_ body: (ServerProcess, UInt16) throws -> Void) throws {
        let server = try ServerProcess("seed-server", ["0"])
        defer {
            #expect(server.stop(), "seed-server did not exit after SIGTERM")
            #expect(waitUntil { server.output.reachedEnd }, "seed-server's stdout is still open")
        }
        let port = try #require(server.waitForPort(), "no listening line; stderr: \(server.errors.text)")
        try body(server, port)
        #expect(server.process.isRunning, "seed-server died; stderr: \(server.errors.text)")
    }

    @Test func helloComesBackUpperCased() throws {
        try withServer { server, port in
            let client = try TestClient(port: port)
            try client.send(Array("hello".utf8))
            #expect(client.receiveText("HELLO") == "HELLO")
            // The lesson's output: the data received, as text.
            #expect(waitUntil { server.count("hello") == 1 })
        }
    }

    @Test func everyByteValueComesBackAsPythonBytesUpperMakesIt() throws {
        try withServer { _, port in
            let client = try TestClient(port: port)
            let all = (0...255).map { UInt8($0) }
            try client.send(all)
            let reply = client.receive(count: 256)
            try #require(reply.count == 256)
            #expect(reply == pythonUpper(all))
            #expect(reply[Int(UInt8(ascii: "a"))] == UInt8(ascii: "A"))
            #expect(reply[0xE9] == 0xE9, "é in Latin-1 is not a-z: bytes.upper() leaves it")
        }
    }

    @Test func twoClientsAtOnceEachGetTheirOwnReply() throws {
        try withServer { _, port in
            let first = try TestClient(port: port)
            let second = try TestClient(port: port)
            try first.send(Array("first client".utf8))
            try second.send(Array("second client".utf8))
            #expect(second.receiveText("SECOND CLIENT") == "SECOND CLIENT")
            #expect(first.receiveText("FIRST CLIENT") == "FIRST CLIENT")
            try second.send(Array("again two".utf8))
            try first.send(Array("again one".utf8))
            #expect(first.receiveText("AGAIN ONE") == "AGAIN ONE")
            #expect(second.receiveText("AGAIN TWO") == "AGAIN TWO")
        }
    }

    @Test func clientsThatLeaveAbruptlyDoNotStopTheServer() throws {
        try withServer { server, port in
            // Each client first makes one round trip, so the server has
            // surely accepted it before it leaves.
            func connectedClient() throws -> TestClient {
                let client = try TestClient(port: port)
                try client.send(Array("ping".utf8))
                #expect(client.receiveText("PING") == "PING")
                return client
            }
            // A client that closes normally (FIN).
            try connectedClient().close()
            // A client that closes with a reply unread: its kernel answers with a reset.
            let unread = try connectedClient()
            try unread.send(Array("never read".utf8))
            #expect(waitUntil { server.count("never read") == 1 })
            // The reply must have arrived, unread, for the close to be a reset.
            #expect(
                waitForUnreadBytes(on: unread.fd, count: "NEVER READ".utf8.count),
                "the reply to the unread request did not arrive within 30 s")
            unread.close()
            // A client that resets the connection (SO_LINGER 0) with data in flight.
            let resetting = try connectedClient()
            try resetting.send(Array("reset".utf8))
            try resetting.closeWithReset()

            #expect(
                waitUntil { server.output.text.components(separatedBy: " left\n").count - 1 >= 3 },
                "the server did not report all three clients as gone: \(server.output.text)"
            )
            let next = try TestClient(port: port)
            try next.send(Array("still here".utf8))
            #expect(next.receiveText("STILL HERE") == "STILL HERE")
        }
    }

    @Test func invalidUTF8DoesNotCrashTheServer() throws {
        try withServer { server, port in
            let client = try TestClient(port: port)
            let bytes: [UInt8] = [0xFF, 0xFE, 0xC3, 0x28, 0x80, UInt8(ascii: "a"), 0xF0, 0x9F]
            try client.send(bytes)
            #expect(client.receive(count: bytes.count) == pythonUpper(bytes))
            // Printed with U+FFFD where the bytes are not UTF-8, where Python would raise.
            #expect(waitUntil { server.output.text.contains("\u{FFFD}") })
            client.close()
            let next = try TestClient(port: port)
            try next.send(Array("alive".utf8))
            #expect(next.receiveText("ALIVE") == "ALIVE")
        }
    }

    /// 1 MiB sent by one thread while the test reads, late and through a
    /// small receive window: the server goes round IN -> OUT -> IN about a
    /// thousand times, 1024 bytes at a time, and must lose or reorder nothing.
    /// (Its 1024-byte replies never come back partial on loopback: EPOLLOUT
    /// is reported only when a third of the send buffer is free, so that
    /// path cannot be forced from outside the process.)
    @Test func largePayloadComesBackFullyUpperCased() throws {
        try withServer { _, port in
            let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 % 251) }
            let expected = pythonUpper(payload)
            let client = try TestClient(port: port, receiveBuffer: 4096)
            let sender = SenderOutcome()
            let fd = client.fd
            Thread {
                do {
                    try payload.withUnsafeBytes { bytes in
                        for start in stride(from: 0, to: bytes.count, by: 4096) {
                            let end = min(start + 4096, bytes.count)
                            try sendAll(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), to: fd)
                            sender.sent(end)
                        }
                    }
                } catch { sender.fail("\(error)") }
                sender.finish()
            }.start()
            defer { #expect(waitUntil(timeout: .seconds(60)) { sender.isFinished }, "sender thread still running") }

            // Read only once the buffers between the sender and this reader
            // are full: the sender has made no progress for 300 ms, or is done.
            #expect(sender.waitUntilStalledOrFinished(), "the sender neither stalled nor finished within 30 s")
            let reply = client.receive(count: payload.count)
            #expect(reply.count == payload.count)
            let firstDifference = zip(reply, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(firstDifference == nil, "reply differs from bytes.upper() at offset \(firstDifference ?? -1)")
            #expect(waitUntil { sender.isFinished })
            #expect(sender.failure == nil)
        }
    }

    @Test func aSecondServerOnAPortInUseExitsWithStatus1() throws {
        try withServer { _, port in
            let second = try ServerProcess("seed-server", [String(port)])
            defer { second.stop() }
            try #require(second.waitForExit(), "the second server is still running")
            #expect(second.process.terminationReason == .exit)
            #expect(second.process.terminationStatus == 1)
            #expect(waitUntil { second.errors.reachedEnd })
            let message = second.errors.text
            #expect(message == "seed-server: cannot bind 127.0.0.1:\(port): Address already in use\n")
            #expect(!second.output.text.contains("listening"))

            // The first server is unaffected.
            let client = try TestClient(port: port)
            try client.send(Array("first".utf8))
            #expect(client.receiveText("FIRST") == "FIRST")
        }
    }
}

/// How the sender thread of the large-payload test ended.
final class SenderOutcome: Sendable {
    private let finished = Atomic<Bool>(false)
    private let sentBytes = Atomic<Int>(0)
    private let error = Lock<String?>(nil)

    func fail(_ message: String) { error.withLock { $0 = message } }
    func sent(_ count: Int) { sentBytes.store(count, ordering: .releasing) }
    /// How many bytes the sender has handed to the kernel so far.
    var progress: Int { sentBytes.load(ordering: .acquiring) }
    func finish() { finished.store(true, ordering: .releasing) }
    var isFinished: Bool { finished.load(ordering: .acquiring) }

    /// Waits (at most 30 s) until the sender is done or has made no progress
    /// for 300 ms; returns whether one of them happened.
    func waitUntilStalledOrFinished() -> Bool {
        var lastSent = -1
        var lastProgress = ContinuousClock.now
        return waitUntil {
            let current = progress
            if current != lastSent {
                lastSent = current
                lastProgress = ContinuousClock.now
            }
            return isFinished || ContinuousClock.now - lastProgress >= .milliseconds(300)
        }
    }
    var failure: String? { error.withLock { $0 } }
}

/// Waits (at most 30 s) until `count` bytes wait unread on the socket `fd`,
/// peeking without blocking; returns whether they did.
func waitForUnreadBytes(on fd: CInt, count: Int) -> Bool {
    var peeked = [UInt8](repeating: 0, count: count)
    return waitUntil {
        let result = peeked.withUnsafeMutableBytes { system_recv(fd, $0, CInt(MSG_PEEK) | CInt(MSG_DONTWAIT)) }
        return (try? result.get()) == count
    }
}
