import SystemPackage
import Syscalls
import TestSupport
import Testing

@testable import Reactor

/// A bare listener and upper-casing echo, without `UpperEchoServer`, so that a
/// test can see the listener's state. Driven by `runOnce` on the test's own
/// task, so that a `SyscallMock` installed there applies to the loop.
final class BareEcho: TCPConnectionHandler {
    let loop: Loop
    var listener: TCPListener!
    var connections: [ObjectIdentifier: TCPConnection] = [:]
    var echoed = 0

    init(options: TCPListener.Options = TCPListener.Options()) throws {
        loop = try makeLoop()
        listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0, options: options) { [unowned self] fd in
            if let connection = try? TCPConnection(loop: self.loop, fileDescriptor: fd, handler: self) {
                self.connections[ObjectIdentifier(connection)] = connection
            }
        }
    }

    var port: UInt16 { listener.localAddress.port }

    func connection(_ connection: TCPConnection, didRead bytes: UnsafeMutableRawBufferPointer) {
        upperInPlace(bytes)
        connection.write(UnsafeRawBufferPointer(bytes))
        echoed += bytes.count
    }

    func connectionDidClose(_ connection: TCPConnection, reason: TCPConnection.CloseReason) {
        connections[ObjectIdentifier(connection)] = nil
        listener.resumeAccepting()
    }

    func close() {
        for connection in connections.values { connection.abort() }
        listener.close()
    }
}

@Suite("TCPListener out of descriptors", .timeLimit(.minutes(1)))
struct AcceptBackoffTests {
    @Test("EMFILE on accept pauses accepting, and after the back-off the pending client is served")
    func pausesThenResumesAfterBackoff() throws {
        let echo = try BareEcho()
        defer { echo.close() }
        // The kernel completes the handshake from its backlog, before any accept.
        let client = try TestClient(port: echo.port)
        try client.send("pending")
        let mock = SyscallMock()
        mock.force(.tooManyOpenFiles, on: .accept4)
        let start = now()
        try mock.install {
            // Returns as soon as the pending connection makes the listener readable.
            try echo.loop.runOnce(timeout: .seconds(30))
            #expect(mock.calls(.accept4) == 1)
            #expect(echo.listener.isPaused)
            #expect(echo.listener.pauseCount == 1)
            #expect(echo.listener.acceptedCount == 0)
            #expect(try drive(echo.loop) { echo.echoed == 7 }, "the pending client was never served")
        }
        #expect(now() - start >= .milliseconds(10), "accepting resumed before the 10 ms back-off")
        #expect(!echo.listener.isPaused)
        #expect(echo.listener.pauseCount == 1)
        #expect(echo.listener.acceptedCount == 1)
        #expect(client.receiveText("PENDING") == "PENDING")
    }

    /// While accept keeps failing, the listener is out of the loop's interest:
    /// the loop sleeps between back-offs instead of waking for the pending
    /// connection again and again.
    @Test("while descriptors stay exhausted the loop does not spin, and resumeAccepting resumes at once")
    func doesNotSpinWhilePaused() throws {
        let echo = try BareEcho()
        defer { echo.close() }
        let client = try TestClient(port: echo.port)
        try client.send("waiting")
        let exhausted = SyscallMock()
        exhausted.force(.tooManyOpenFiles, on: .accept4, times: 1_000)
        var iterations = 0
        // From before the first accept: every back-off counts from a moment after this.
        let start = now()
        try exhausted.install {
            try echo.loop.runOnce(timeout: .seconds(30))
            #expect(echo.listener.isPaused)
            // Until the listener has retried three times, however long that takes on this machine.
            while exhausted.calls(.accept4) < 4 && now() - start < .seconds(30) {
                try echo.loop.runOnce(timeout: .milliseconds(20))
                iterations += 1
            }
        }
        let elapsed = now() - start
        let accepts = exhausted.calls(.accept4)
        #expect(accepts == 4, "the listener retried \(accepts - 1) times in 30 s, not 3")
        // Back-offs of 10, 20, 40 ms: the third retry comes 70 ms after the first accept at the earliest.
        #expect(elapsed >= .milliseconds(70), "three retries within \(elapsed): the back-off did not double")
        // Each wake-up is a retry's timer, the accept it re-enables, or the end
        // of a 20 ms wait: a loop woken by the paused listener would spin
        // through thousands in the same time.
        let bound = 2 * accepts + Int(elapsed / .milliseconds(20)) + 5
        #expect(iterations <= bound, "the loop woke \(iterations) times in \(elapsed), more than \(bound)")
        #expect(exhausted.calls(.epollWait) <= bound + 1)
        #expect(echo.listener.pauseCount == accepts)
        #expect(echo.listener.acceptedCount == 0)
        // A descriptor was freed: accept again without waiting out the back-off.
        #expect(echo.listener.isPaused)
        echo.listener.resumeAccepting()
        #expect(!echo.listener.isPaused)
        try echo.loop.runOnce(timeout: .zero)
        #expect(echo.listener.acceptedCount == 1, "resumeAccepting did not make the listener accept at once")
        #expect(try drive(echo.loop) { echo.echoed == 7 })
        #expect(client.receiveText("WAITING") == "WAITING")
    }
}
