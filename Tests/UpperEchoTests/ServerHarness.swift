import Foundation
import Selectors
import TestSupport
import UpperEcho

@testable import Reactor

/// An `UpperEchoServer` on 127.0.0.1, on a port the kernel picks, served by a
/// loop on its own thread. Read its state with `stats()` or `onLoop`; end it
/// with `shutdown()`, which closes the listener and every connection.
final class ServerHarness: @unchecked Sendable {
    let loopThread: LoopThread
    /// The server: touch it only on the loop's thread, or after `run()` returned.
    let server: UpperEchoServer
    let port: UInt16
    /// The loop's sources once the server listens: its wake-up and the listener.
    let baselineSources: Int

    init(options: LoopOptions = LoopOptions(), _ configure: (inout Configuration) -> Void = { _ in }) throws {
        var configuration = Configuration()
        configuration.port = 0
        configure(&configuration)
        let loop = try makeLoop(options: options)
        server = try UpperEchoServer(loop: loop, configuration: configuration)
        port = server.localAddress.port
        baselineSources = loop.sourceCount
        loopThread = LoopThread(loop)
        loopThread.start()
    }

    /// Runs `body` with the server on the loop's thread.
    func onLoop<R>(_ body: @escaping (UpperEchoServer, Loop) -> R) throws -> R {
        let server = Unchecked(server)
        return try loopThread.onLoop { body(server.value, $0) }
    }

    /// The server's counters, read on the loop's thread.
    func stats() throws -> ServerStats {
        try onLoop { server, _ in server.stats }
    }

    /// How many sources the loop watches, read on the loop's thread.
    func sourceCount() throws -> Int {
        try onLoop { _, loop in loop.sourceCount }
    }

    /// Waits until the counters satisfy `condition`; returns the last ones read.
    @discardableResult
    func waitForStats(timeout: Duration = .seconds(30), _ condition: (ServerStats) -> Bool) throws -> ServerStats {
        var last = try stats()
        _ = try waitUntil(timeout: timeout) {
            last = try stats()
            return condition(last)
        }
        return last
    }

    /// Starts a shutdown on the loop's thread: the server closes its
    /// listener, delivers what is queued, waits at most `grace` for each peer
    /// to close, then stops the loop.
    func beginShutdown(grace: Duration = .zero) {
        let server = Unchecked(server)
        loopThread.loop.handle.execute { _ in server.value.shutdown(grace: grace) }
    }

    /// Shuts the server down (see `beginShutdown`) and waits for the loop's
    /// thread to end. After `stopLoopThread`, shuts it down on this thread.
    func shutdown(grace: Duration = .zero) throws {
        if loopThreadStopped {
            server.shutdown(grace: .zero)
            try loopThread.loop.runOnce(timeout: .zero)  // the grace timer closes what is left
            return
        }
        beginShutdown(grace: grace)
        try loopThread.join()
    }

    private var loopThreadStopped = false

    /// Stops the loop's thread, so that the test's own task can drive the
    /// loop with `runOnce` (for example inside a `SyscallMock`).
    func stopLoopThread() throws {
        try loopThread.stop()
        loopThreadStopped = true
    }
}
