// The async API under the `NonisolatedNonsendingByDefault` upcoming feature
// (this target is built with it on): nonisolated async functions run on
// their caller's executor, so the API must not assume the global pool.
import Foundation
import Reactor
import Selectors
import Synchronization
import TestSupport
import Testing

/// An actor pinned to a loop.
actor Tally {
    let handle: EventLoopHandle
    nonisolated var unownedExecutor: UnownedSerialExecutor { handle.serialExecutor.asUnownedSerialExecutor() }
    private(set) var count = 0
    init(_ handle: EventLoopHandle) { self.handle = handle }

    /// Adds one; returns whether it ran on the loop's thread.
    func add() -> Bool {
        count += 1
        return handle.taskExecutor.isCurrent
    }
}

@Suite("The async API with NonisolatedNonsendingByDefault on", .timeLimit(.minutes(1)))
struct AsyncNonsendingTests {
    @Test("serve, for-try-await over connections, and reads and writes: every byte back")
    func serveAndIterate() throws {
        let loop = try makeLoop()
        let listener = try AsyncTCPListener(loop: loop, host: "127.0.0.1", port: 0)
        let port = listener.localAddress.port
        let loopThread = LoopThread(loop)
        let onLoop = Counter()
        let handle = loop.handle
        handle.task {
            // The sequence form, with its next(isolation:).
            var served = 0
            for try await connection in listener.connections {
                served += 1
                handle.task {
                    if handle.taskExecutor.isCurrent { onLoop.add(1) }
                    while let bytes = try? await connection.read({ Array($0) }) {
                        do { try await connection.write(bytes) } catch { break }
                    }
                    await connection.closeLingering()
                }
                if served == 3 { listener.close() }
            }
        }
        loopThread.start()
        defer { try? loopThread.stop() }
        for index in 0..<3 {
            let client = try TestClient(port: port)
            #expect(try client.echo("nonsending \(index)") == "nonsending \(index)")
        }
        #expect(waitUntil { onLoop.current == 3 }, "\(onLoop.current) of 3 connection tasks ran on the loop")
    }

    @Test("an actor pinned to the loop, called from a task on the loop and from one without a preference")
    func loopPinnedActor() async throws {
        let loopThread = LoopThread(try makeLoop())
        loopThread.start()
        defer { try? loopThread.stop() }
        let handle = loopThread.loop.handle
        let tally = Tally(handle)
        let fromLoop = try await handle.task {
            var all = true
            for _ in 0..<50 { all = await tally.add() && all }
            return all
        }.value
        #expect(fromLoop)
        var fromElsewhere = true
        for _ in 0..<5 { fromElsewhere = await tally.add() && fromElsewhere }
        #expect(fromElsewhere)
        #expect(await tally.count == 55)
    }
}
