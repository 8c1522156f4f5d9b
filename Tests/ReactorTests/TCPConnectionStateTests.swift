import CEpollShim
import Syscalls
import TestSupport
import Testing

@testable import Reactor

/// The closing contract: what was written before `close()` or
/// `closeLingering()` is delivered, what is written after is dropped, and
/// `state` says where the connection is.
@Suite("TCPConnection states and the closing contract", .timeLimit(.minutes(1)))
struct TCPConnectionStateTests {
    /// 1 MiB: more than the socket pair buffers, so that some of it queues.
    static let large = [UInt8](repeating: 0x61, count: 1024 * 1024)

    @Test("a write after close() is dropped; what was written before is delivered")
    func writeAfterCloseIsDropped() throws {
        let pair = try ConnectedPair()
        Self.large.withUnsafeBytes { pair.connection.write($0) }
        try #require(pair.connection.queuedBytes > 0, "nothing queued: the test would prove nothing")
        pair.connection.close()
        #expect(pair.connection.state == .draining(afterEndOfInput: false))
        let queued = pair.connection.queuedBytes
        Array("late".utf8).withUnsafeBytes { pair.connection.write($0) }
        #expect(pair.connection.queuedBytes == queued, "the late write was queued")
        #expect(
            try drive(pair.loop, timeout: .seconds(30)) {
                pair.peerDrain()
                return pair.peerSawEnd
            }, "the peer never saw the end of input")
        let intact = pair.peerReceived == Self.large
        #expect(intact, "the peer got \(pair.peerReceived.count) bytes, not exactly the \(Self.large.count) written")
        #expect(pair.handler.reasons == [.closedLocally])
        #expect(pair.connection.state == .closed)
    }

    @Test("a write after closeLingering() is dropped and does not turn the close into a reset")
    func writeAfterLingeringCloseIsDropped() throws {
        let pair = try ConnectedPair()
        Array("before".utf8).withUnsafeBytes { pair.connection.write($0) }
        try #require(pair.connection.queuedBytes == 0)
        pair.connection.closeLingering()
        // Nothing was queued, so the end of input went out at once.
        #expect(pair.connection.state == .lingering(halfClosed: true))
        // Sending after shutdown(SHUT_WR) would fail with EPIPE: a reset.
        Array("after".utf8).withUnsafeBytes { pair.connection.write($0) }
        #expect(pair.connection.state == .lingering(halfClosed: true), "the late write ended the lingering close")
        #expect(
            try drive(pair.loop, timeout: .seconds(30)) {
                pair.peerDrain()
                return pair.peerSawEnd
            }, "the peer never saw the end of input")
        #expect(pair.peerReceived == Array("before".utf8))
        // The peer finishes too; only then does the lingering close end.
        _ = system_shutdown(pair.peer, CInt(SHUT_WR))
        #expect(try drive(pair.loop, timeout: .seconds(30)) { pair.connection.isClosed })
        #expect(pair.handler.reasons == [.closedLocally])
    }

    @Test("a lingering close with replies queued delivers them, then half-closes, then waits for the peer")
    func lingeringWithAQueue() throws {
        let pair = try ConnectedPair()
        Self.large.withUnsafeBytes { pair.connection.write($0) }
        try #require(pair.connection.queuedBytes > 0, "nothing queued: the test would prove nothing")
        pair.connection.closeLingering()
        #expect(pair.connection.state == .lingering(halfClosed: false))
        Array("late".utf8).withUnsafeBytes { pair.connection.write($0) }
        // The peer sends meanwhile: read and dropped, never a reset.
        pair.peerSend(Array("ignored".utf8))
        #expect(
            try drive(pair.loop, timeout: .seconds(30)) {
                pair.peerDrain()
                return pair.peerSawEnd
            }, "the peer never saw the end of input")
        let intact = pair.peerReceived == Self.large
        #expect(intact, "the peer got \(pair.peerReceived.count) bytes, not exactly the \(Self.large.count) written")
        #expect(pair.connection.state == .lingering(halfClosed: true))
        _ = system_shutdown(pair.peer, CInt(SHUT_WR))
        #expect(try drive(pair.loop, timeout: .seconds(30)) { pair.connection.isClosed })
        #expect(pair.handler.reasons == [.closedLocally])
        #expect(pair.handler.received == 0, "a lingering connection handed input to its handler")
    }

    @Test("the peer's end of input with replies queued: draining, then closed after delivering them")
    func endOfInputDrains() throws {
        // Above the queue, so that reading is not paused and the end of input is seen.
        var options = TCPConnection.Options()
        options.highWaterMark = 4 * Self.large.count
        let pair = try ConnectedPair(options: options)
        pair.handler.echo = false
        Self.large.withUnsafeBytes { pair.connection.write($0) }
        try #require(pair.connection.queuedBytes > 0, "nothing queued: the test would prove nothing")
        _ = system_shutdown(pair.peer, CInt(SHUT_WR))
        #expect(try drive(pair.loop, timeout: .seconds(30)) { pair.connection.state != .open })
        #expect(pair.connection.state == .draining(afterEndOfInput: true))
        // Closing now changes nothing: it closes once the queue is delivered.
        pair.connection.close()
        pair.connection.closeLingering()
        #expect(pair.connection.state == .draining(afterEndOfInput: true))
        #expect(
            try drive(pair.loop, timeout: .seconds(30)) {
                pair.peerDrain()
                return pair.peerSawEnd
            })
        let intact = pair.peerReceived == Self.large
        #expect(intact, "the peer got \(pair.peerReceived.count) bytes, not exactly the \(Self.large.count) written")
        #expect(pair.handler.reasons == [.endOfInput])
        #expect(pair.connection.state == .closed)
    }

    @Test("read-paused sits beside the state: a paused connection is still open")
    func readPausedBesideOpen() throws {
        var options = TCPConnection.Options()
        options.highWaterMark = 1024
        options.lowWaterMark = 512
        let pair = try ConnectedPair(options: options)
        Self.large.withUnsafeBytes { pair.connection.write($0) }
        #expect(pair.connection.isReadingPaused)
        #expect(pair.connection.state == .open)
        #expect(
            try drive(pair.loop, timeout: .seconds(30)) {
                pair.peerDrain()
                return pair.peerReceived.count == Self.large.count
            })
        #expect(!pair.connection.isReadingPaused)
        #expect(pair.connection.state == .open)
    }
}
