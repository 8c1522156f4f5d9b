import CEpollShim
import SystemPackage
import Syscalls
import TestSupport
import Testing

@testable import Reactor

/// Records what a connection reports; echoes upper-cased when `echo` is set.
final class RecordingHandler: TCPConnectionHandler {
    var echo = true
    var received = 0
    var reasons: [TCPConnection.CloseReason] = []

    func connection(_ connection: TCPConnection, didRead bytes: UnsafeMutableRawBufferPointer) {
        received += bytes.count
        guard echo else { return }
        upperInPlace(bytes)
        connection.write(UnsafeRawBufferPointer(bytes))
    }

    func connectionDidClose(_ connection: TCPConnection, reason: TCPConnection.CloseReason) {
        reasons.append(reason)
    }
}

/// A `TCPConnection` on one end of a non-blocking AF_UNIX stream pair, the
/// test holding the other end, on a loop driven by `runOnce`.
final class ConnectedPair {
    let loop: Loop
    let handler = RecordingHandler()
    let connection: TCPConnection
    let peer: CInt
    /// What the peer has read.
    var peerReceived: [UInt8] = []
    /// Whether the peer has read the end of input.
    var peerSawEnd = false

    init(clock: any LoopClock = SystemClock(), options: TCPConnection.Options = TCPConnection.Options()) throws {
        loop = try makeLoop(clock: clock)
        let type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        let (mine, theirs) = try system_socketpair(AF_UNIX, type).get()
        peer = theirs
        connection = try TCPConnection(
            loop: loop, fileDescriptor: FileDescriptor(rawValue: mine), options: options, handler: handler)
    }

    deinit {
        connection.abort()
        _ = system_close(peer)
    }

    /// Sends from the peer what the socket takes now; returns how much.
    @discardableResult
    func peerSend(_ bytes: [UInt8]) -> Int {
        let result = bytes.withUnsafeBytes { system_send(peer, $0) }
        return (try? result.get()) ?? 0
    }

    /// Reads on the peer's side whatever is there.
    func peerDrain() {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !peerSawEnd, case .success(let count) = chunk.withUnsafeMutableBytes({ system_recv(peer, $0) }) {
            if count == 0 { peerSawEnd = true } else { peerReceived += chunk[..<count] }
        }
    }
}

@Suite("TCPConnection on a socket pair", .timeLimit(.minutes(1)))
struct TCPConnectionTests {
    @Test("close() with replies queued delivers them all, then closes")
    func closeFlushesFirst() throws {
        let pair = try ConnectedPair()
        let payload = PatternStream().block + PatternStream().block
        let large = Array(repeating: payload, count: 8).flatMap { $0 }  // 1 MiB: more than the pair buffers
        large.withUnsafeBytes { pair.connection.write($0) }
        #expect(pair.connection.queuedBytes > 0)
        pair.connection.close()
        #expect(!pair.connection.isClosed, "closed before the queue was delivered")
        #expect(
            try drive(pair.loop) {
                pair.peerDrain()
                return pair.peerSawEnd
            })
        // A Bool, not `==` inside #expect: its diff of two 1 MiB arrays would take forever.
        let intact = pair.peerReceived == large
        #expect(intact, "the peer got \(pair.peerReceived.count) of \(large.count) bytes, or other bytes")
        #expect(pair.handler.reasons == [.closedLocally])
        #expect(pair.connection.isClosed)
        #expect(pair.loop.sourceCount == 1)
    }

    @Test("abort() drops the queue and closes at once")
    func abortDropsQueue() throws {
        let pair = try ConnectedPair()
        let large = [UInt8](repeating: 0x41, count: 1024 * 1024)
        large.withUnsafeBytes { pair.connection.write($0) }
        pair.connection.abort()
        #expect(pair.connection.isClosed)
        #expect(pair.connection.queuedBytes == 0)
        #expect(pair.handler.reasons == [.closedLocally])
        pair.peerDrain()
        #expect(pair.peerSawEnd)
        #expect(pair.peerReceived.count < large.count)
        large.withUnsafeBytes { pair.connection.write($0) }  // dropped, and no crash
        #expect(pair.loop.sourceCount == 1)
    }

    @Test("reading stops at the high-water mark and starts again at the low one")
    func waterMarks() throws {
        var options = TCPConnection.Options()
        options.highWaterMark = 64 * 1024
        options.lowWaterMark = 16 * 1024
        let pair = try ConnectedPair(options: options)
        let chunk = [UInt8](repeating: UInt8(ascii: "w"), count: 16 * 1024)
        var sent = 0
        #expect(
            try drive(pair.loop) {
                sent += pair.peerSend(chunk)
                return pair.connection.isReadingPaused
            }, "reading never paused although the peer reads nothing")
        #expect(pair.connection.queuedBytes >= options.highWaterMark)
        #expect(pair.connection.queuedBytes < options.highWaterMark + 64 * 1024)
        // While paused, what the peer sends is left in the kernel.
        let receivedWhenPaused = pair.handler.received
        for _ in 0..<5 {
            pair.peerSend(chunk)
            try pair.loop.runOnce(timeout: .milliseconds(5))
        }
        #expect(pair.handler.received == receivedWhenPaused)
        #expect(
            try drive(pair.loop) {
                pair.peerDrain()
                return !pair.connection.isReadingPaused
            })
        #expect(pair.connection.queuedBytes <= options.lowWaterMark)
        #expect(pair.connection.peakQueuedBytes < options.highWaterMark + 64 * 1024)
    }

    @Test("the idle timeout counts from the last byte moved (manual clock)")
    func idleTimeoutOnManualClock() throws {
        let clock = ManualClock()
        var options = TCPConnection.Options()
        options.idleTimeout = .seconds(1)
        let pair = try ConnectedPair(clock: clock, options: options)
        pair.handler.echo = false  // only the read moves the activity time
        clock.advance(by: .milliseconds(500))
        pair.peerSend(Array("x".utf8))
        try pair.loop.runOnce(timeout: .milliseconds(100))  // reads at 0.5 s
        #expect(pair.handler.received == 1)
        clock.advance(by: .milliseconds(500))
        try pair.loop.runOnce(timeout: .zero)  // 1.0 s: the first deadline, but activity at 0.5 s
        #expect(!pair.connection.isClosed, "closed one timeout after opening despite activity")
        clock.advance(by: .milliseconds(499))
        try pair.loop.runOnce(timeout: .zero)
        #expect(!pair.connection.isClosed)
        clock.advance(by: .milliseconds(1))
        try pair.loop.runOnce(timeout: .zero)  // 1.5 s: one timeout after the last byte
        #expect(pair.connection.isClosed)
        #expect(pair.handler.reasons == [.idleTimeout])
        #expect(pair.loop.timerCount == 0)
    }

    @Test("the peer's end of input with nothing queued closes the connection")
    func endOfInputCloses() throws {
        let pair = try ConnectedPair()
        pair.peerSend(Array("bye".utf8))
        try system_shutdown(pair.peer, CInt(SHUT_WR)).get()
        #expect(try drive(pair.loop) { pair.connection.isClosed })
        pair.peerDrain()
        #expect(String(decoding: pair.peerReceived, as: UTF8.self) == "BYE")
        #expect(pair.peerSawEnd)
        #expect(pair.handler.reasons == [.endOfInput])
    }
}
