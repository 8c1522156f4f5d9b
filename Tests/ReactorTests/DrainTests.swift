import CEpollShim
import Glibc
import Syscalls
import TestSupport
import Testing

@testable import Reactor

/// A drain that loses no request: the listener accepts what the kernel has
/// queued before it closes, and a connection answers the input that has
/// already arrived before it half-closes.
@Suite("Draining: queued connections and input already arrived", .timeLimit(.minutes(1)))
struct DrainTests {
    @Test("closeLingeringAfterInput answers the input that had arrived, then half-closes")
    func answersInputAlreadyArrived() throws {
        let pair = try ConnectedPair()
        // Arrived, never read: the loop has not run since.
        try #require(pair.peerSend(Array("ping\n".utf8)) == 5)
        pair.connection.closeLingeringAfterInput()
        #expect(
            try drive(pair.loop, timeout: .seconds(30)) {
                pair.peerDrain()
                return pair.peerSawEnd
            }, "the peer never saw the end of input")
        #expect(String(decoding: pair.peerReceived, as: UTF8.self) == "PING\n", "the request was not answered")
        #expect(pair.connection.state == .lingering(halfClosed: true))
        _ = system_shutdown(pair.peer, CInt(SHUT_WR))
        #expect(try drive(pair.loop, timeout: .seconds(30)) { pair.connection.isClosed })
        #expect(pair.handler.reasons == [.closedLocally])
    }

    @Test("closeLingering, by contrast, drops the input that had arrived unread")
    func plainLingeringDropsUnreadInput() throws {
        let pair = try ConnectedPair()
        try #require(pair.peerSend(Array("ping\n".utf8)) == 5)
        pair.connection.closeLingering()
        #expect(
            try drive(pair.loop, timeout: .seconds(30)) {
                pair.peerDrain()
                return pair.peerSawEnd
            })
        #expect(pair.peerReceived.isEmpty, "closeLingering answered: the contrast above proves nothing")
    }

    @Test("input that arrived while reading was paused by backpressure is answered in full")
    func answersAfterBackpressure() throws {
        var options = TCPConnection.Options()
        options.highWaterMark = 4096
        options.lowWaterMark = 1024
        let pair = try ConnectedPair(options: options)
        // Replies the peer does not read yet: the queue passes the high-water mark.
        let earlier = [UInt8](repeating: UInt8(ascii: "E"), count: 1024 * 1024)
        earlier.withUnsafeBytes { pair.connection.write($0) }
        try #require(pair.connection.isReadingPaused, "reading never paused: the test would prove nothing")
        var sent: [UInt8] = []
        while sent.count < 256 * 1024 {
            let chunk = (0..<4096).map { UInt8(ascii: "a") + UInt8((sent.count + $0) % 26) }
            let count = pair.peerSend(chunk)
            sent += chunk[..<count]
            if count < chunk.count { break }
        }
        try #require(sent.count > options.highWaterMark, "the socket took only \(sent.count) bytes")
        pair.connection.closeLingeringAfterInput()
        #expect(pair.connection.state == .answering)
        #expect(
            try drive(pair.loop, timeout: .seconds(30)) {
                pair.peerDrain()
                return pair.peerSawEnd
            }, "the peer never saw the end of input")
        let intact = pair.peerReceived == earlier + pythonUpper(sent)
        #expect(
            intact, "the peer got \(pair.peerReceived.count) of \(earlier.count + sent.count) bytes, or wrong ones")
    }

    @Test(
        "a peer that keeps the socket full cannot hold the answering open: what had arrived is answered, then the half-close"
    )
    func aPeerThatNeverStopsSendingIsNotWaitedFor() throws {
        // One read per wake-up: between two reads the peer fills the socket
        // again, so that no read is ever short.
        var options = TCPConnection.Options()
        options.readsPerWakeup = 1
        let pair = try ConnectedPair(options: options)
        func fill() -> [UInt8] {
            var sent: [UInt8] = []
            while true {
                let chunk = [UInt8](repeating: UInt8(ascii: "q"), count: 16 * 1024)
                let count = pair.peerSend(chunk)
                sent += chunk[..<max(count, 0)]
                if count < chunk.count { return sent }
            }
        }
        let before = fill()
        try #require(before.count > 64 * 1024, "the socket took only \(before.count) bytes")
        pair.connection.closeLingeringAfterInput()
        // Every step the peer fills the socket again and reads its replies:
        // every read the connection makes is a full one.
        let left = try drive(pair.loop, timeout: .seconds(30)) {
            _ = fill()
            pair.peerDrain()
            return pair.connection.state != .answering
        }
        #expect(left, "still answering after 30 s: a peer that keeps sending holds the drain open")
        #expect(pair.peerReceived.count >= before.count, "answered \(pair.peerReceived.count) of \(before.count)")
        #expect(pair.peerReceived.prefix(before.count).allSatisfy { $0 == UInt8(ascii: "Q") })
    }

    @Test("a connection that has received nothing waits for its first bytes and answers them")
    func waitsForTheFirstBytes() throws {
        let pair = try ConnectedPair()
        pair.connection.closeLingeringAfterInput(firstInputWithin: .seconds(60))
        try pair.loop.runOnce(timeout: .zero)
        #expect(pair.connection.state == .answering, "it half-closed without waiting")
        try #require(pair.peerSend(Array("late\n".utf8)) == 5)
        #expect(
            try drive(pair.loop, timeout: .seconds(30)) {
                pair.peerDrain()
                return pair.peerSawEnd
            }, "the peer never saw the end of input")
        #expect(String(decoding: pair.peerReceived, as: UTF8.self) == "LATE\n")
    }

    @Test("the wait for the first bytes ends: the connection half-closes with nothing to answer")
    func firstInputWaitEnds() throws {
        let clock = ManualClock()
        let pair = try ConnectedPair(clock: clock)
        pair.connection.closeLingeringAfterInput(firstInputWithin: .seconds(1))
        try pair.loop.runOnce(timeout: .zero)
        #expect(pair.connection.state == .answering)
        clock.advance(by: .seconds(1))
        try pair.loop.runOnce(timeout: .zero)
        #expect(pair.connection.state == .lingering(halfClosed: true))
        #expect(
            try drive(pair.loop, timeout: .seconds(30)) {
                pair.peerDrain()
                return pair.peerSawEnd
            })
        #expect(pair.peerReceived.isEmpty)
    }

    @Test("a connection that received bytes before does not wait for more")
    func noWaitAfterEarlierInput() throws {
        let pair = try ConnectedPair()
        try #require(pair.peerSend(Array("one".utf8)) == 3)
        #expect(try drive(pair.loop, timeout: .seconds(30)) { pair.connection.bytesSent == 3 })
        pair.connection.closeLingeringAfterInput(firstInputWithin: .seconds(60))
        #expect(pair.connection.state == .lingering(halfClosed: true))
    }

    @Test("acceptQueuedThenClose serves the connections queued in the kernel; close() alone resets them")
    func acceptsTheQueueBeforeClosing() throws {
        for drains in [true, false] {
            let loop = try makeLoop()
            let handler = RecordingHandler()
            var connections: [TCPConnection] = []
            let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { fd in
                connections.append(try! TCPConnection(loop: loop, fileDescriptor: fd, handler: handler))
            }
            // The handshakes complete in the kernel; the loop never runs, so
            // none is accepted before the close.
            let clients = try (0..<3).map { _ in try TestClient(port: listener.localAddress.port) }
            for client in clients { try client.send("ping\n") }
            if drains { listener.acceptQueuedThenClose() } else { listener.close() }
            #expect(listener.acceptedCount == (drains ? 3 : 0))
            for connection in connections { connection.closeLingeringAfterInput() }
            _ = try drive(loop, timeout: .seconds(30)) { connections.allSatisfy { $0.state != .answering } }
            for client in clients {
                var received: [UInt8] = []
                let ending = client.receiveUntilEnd { _, bytes in received += bytes }
                if drains {
                    #expect(String(decoding: received, as: UTF8.self) == "PING\n" && ending == .endOfFile)
                } else {
                    #expect(ending == .reset, "close() with connections queued: the kernel resets them")
                }
            }
            for connection in connections { connection.abort() }
        }
    }

    @Test(
        "refuseNewConnections: queued handshakes are served, a new connect never completes, and meets a refusal once the listener closes"
    )
    func refusingNewConnectionsLetsNoneInAndResetsNone() throws {
        let loop = try makeLoop()
        let handler = RecordingHandler()
        var connections: [TCPConnection] = []
        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { fd in
            connections.append(try! TCPConnection(loop: loop, fileDescriptor: fd, handler: handler))
        }
        let port = listener.localAddress.port
        let queued = try TestClient(port: port)
        try queued.send("ping\n")
        listener.refuseNewConnections()
        #expect(listener.acceptedCount == 1, "the queued connection was not accepted")
        for connection in connections { connection.closeLingeringAfterInput() }

        // A connect from now on: its SYN is dropped, so it stays in progress.
        let late = try system_socket(AF_INET, CInt(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue)).get()
        defer { _ = system_close(late) }
        let started = system_connect(late, SocketAddress(host: "127.0.0.1", port: port)!)
        if case .failure(let errno) = started {
            #expect(errno == .nowInProgress, "connect failed: \(errno)")
        } else {
            Issue.record("the late connect completed at once: the listener let it in")
        }
        var poll = pollfd(fd: late, events: Int16(POLLOUT), revents: 0)
        #expect(Glibc.poll(&poll, 1, 300) == 0, "the late connect completed: the listener let it in")
        _ = try drive(loop, timeout: .seconds(30)) { connections.allSatisfy { $0.state != .answering } }
        #expect(listener.acceptedCount == 1)

        // The queued client got its answer and a clean end, not a reset.
        var received: [UInt8] = []
        let ending = queued.receiveUntilEnd { _, bytes in received += bytes }
        #expect(String(decoding: received, as: UTF8.self) == "PING\n" && ending == .endOfFile, "\(ending)")

        // Closed: the late client's next SYN meets a closed port, a refusal a balancer retries elsewhere.
        listener.close()
        #expect(Glibc.poll(&poll, 1, 30_000) == 1, "the late connect never ended")
        var error: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        _ = getsockopt(late, SOL_SOCKET, SO_ERROR, &error, &length)
        #expect(error == ECONNREFUSED, "the late connect ended with errno \(error)")
        for connection in connections { connection.abort() }
    }
}
