import Dispatch
import CEpollShim
import Foundation
import Selectors
import Synchronization
import Syscalls
import SystemPackage
import TestSupport
import Testing

@testable import Reactor

/// A loop on its own thread with an `AsyncTCPListener` on 127.0.0.1.
private final class AsyncServer: @unchecked Sendable {
    let loopThread: LoopThread
    let listener: AsyncTCPListener
    var port: UInt16 { listener.localAddress.port }
    var handle: EventLoopHandle { loopThread.loop.handle }

    init(connectionOptions: TCPConnection.Options = .init()) throws {
        let loop = try makeLoop()
        listener = try AsyncTCPListener(loop: loop, host: "127.0.0.1", port: 0, connectionOptions: connectionOptions)
        loopThread = LoopThread(loop)
        loopThread.start()
    }

    /// Serves every connection with `handler`, in a task on the loop.
    @discardableResult
    func serve(_ handler: @escaping @Sendable (AsyncTCPConnection) async -> Void) -> Task<Void, any Error> {
        let listener = self.listener
        return handle.task { try await listener.serve(handler) }
    }

    func stop() throws {
        try loopThread.stop()
    }
}

/// Echoes every byte until end of input, then closes.
@Sendable private func echo(_ connection: AsyncTCPConnection) async {
    while let bytes = try? await connection.read({ Array($0) }) {
        do { try await connection.write(bytes) } catch { break }
    }
    await connection.closeLingering()
}

/// What a test saw on the loop, from its tasks.
private final class Seen<Value: Sendable>: Sendable {
    private let lock = Lock<[Value]>([])
    func add(_ value: Value) { lock.withLock { $0.append(value) } }
    var all: [Value] { lock.withLock { $0 } }
}

@Suite("Async TCP on the loop: AsyncTCPListener and AsyncTCPConnection", .timeLimit(.minutes(2)))
struct AsyncTCPTests {
    @Test("bytes come back, every one, and end of input is 0, not an error")
    func echoAndEndOfInput() throws {
        let server = try AsyncServer()
        defer { try? server.stop() }
        let ends = Seen<String>()
        server.serve { connection in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 1)
            defer { buffer.deallocate() }
            var total = 0
            while true {
                do {
                    let count = try await connection.read(into: buffer)
                    if count == 0 { break }
                    total += count
                    try await connection.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                } catch {
                    ends.add("error \(error)")
                    return
                }
            }
            ends.add("end after \(total)")
            try? await connection.write(Array("bye\n".utf8))
            await connection.closeLingering()
        }
        let client = try TestClient(port: server.port)
        let message = (0..<256).map { UInt8($0) } + Array("hello, async\n".utf8)
        try client.send(message)
        #expect(client.receive(count: message.count) == message)
        try client.shutdownWrite()
        #expect(client.receive(count: 4) == Array("bye\n".utf8))
        #expect(client.receivesEndOfInput(), "more after the reply, or no end")
        #expect(waitUntil { ends.all == ["end after \(message.count)"] }, "\(ends.all)")
    }

    @Test("in steady state a read that waits costs no epoll_ctl: 200 round trips, interest unchanged")
    func steadyStateNeedsNoEpollCtl() throws {
        let server = try AsyncServer()
        defer { try? server.stop() }
        let connections = Lock<[AsyncTCPConnection]>([])
        server.serve { connection in
            connections.withLock { $0.append(connection) }
            await echo(connection)
        }
        let client = try TestClient(port: server.port)
        // The first message may arrive before the connection's task reads:
        // then the loop turns read interest off until the first read that
        // has to wait turns it on again. From then on, nothing changes.
        #expect(try client.echo("first") == "first")
        let count = { try server.loopThread.onLoop { _ in connections.withLock { $0.map(\.interestChanges) } } }
        let before = try count()
        for index in 0..<200 {
            #expect(try client.echo("message \(index)") == "message \(index)")
        }
        #expect(try count() == before, "interest changed during the round trips")
    }

    @Test(
        "a read waiting for input resumes at once with .cancelled when its task is cancelled; the connection stays usable"
    )
    func cancelledRead() async throws {
        let server = try AsyncServer()
        defer { try? server.stop() }
        let outcomes = Seen<String>()
        let parked = DispatchSemaphore(value: 0)
        let reader = Lock<Task<Void, any Error>?>(nil)
        server.serve { connection in
            let handle = server.handle
            // A task of its own reads, and is cancelled from the test.
            let task = handle.task {
                do {
                    parked.signal()
                    _ = try await connection.read { $0.count }
                    outcomes.add("read returned")
                } catch {
                    outcomes.add("\(error)")
                }
            }
            reader.withLock { $0 = task }
            _ = await task.result
            // Still open: a new read gets the next bytes.
            let next = try? await connection.read { Array($0) }
            outcomes.add(String(decoding: next ?? [], as: UTF8.self))
            connection.close()
        }
        let client = try TestClient(port: server.port)
        #expect(parked.wait(timeout: .now() + 30) == .success)
        // Make sure it is parked: the loop has waited since.
        try server.loopThread.waitUntilBlocked()
        reader.withLock { $0 }?.cancel()
        #expect(waitUntil { outcomes.all == ["cancelled"] }, "\(outcomes.all)")
        try client.send(Array("after\n".utf8))
        #expect(waitUntil { outcomes.all == ["cancelled", "after\n"] }, "\(outcomes.all)")
    }

    @Test("a read waiting in serve's own task for a connection resumes with .cancelled when serve's task is cancelled")
    func cancelledServe() async throws {
        let server = try AsyncServer()
        defer { try? server.stop() }
        let outcomes = Seen<String>()
        let parked = DispatchSemaphore(value: 0)
        let serving = server.serve { connection in
            // serve runs the handler in one cancellation scope: its waits
            // have no handler of their own, the scope's resumes them.
            outcomes.add("covered \(connection.coversCancellation)")
            parked.signal()
            do {
                _ = try await connection.read { $0.count }
                outcomes.add("read returned")
            } catch {
                outcomes.add("\(error)")
            }
            connection.close()
        }
        let client = try TestClient(port: server.port)
        #expect(parked.wait(timeout: .now() + 30) == .success)
        try server.loopThread.waitUntilBlocked()
        serving.cancel()
        #expect(waitUntil { outcomes.all == ["covered true", "cancelled"] }, "\(outcomes.all)")
        #expect(client.receivesEndOfInput(), "the connection was not closed")
        await #expect(throws: AsyncTCPError.cancelled) { try await serving.value }
    }

    @Test(
        "withCancellationScope in a task of one's own: cancelling the task resumes its waiting read; the scope nests and ends"
    )
    func cancellationScopeOfOnesOwn() async throws {
        let server = try AsyncServer()
        defer { try? server.stop() }
        let outcomes = Seen<String>()
        let parked = DispatchSemaphore(value: 0)
        let reader = Lock<Task<Void, any Error>?>(nil)
        let listener = server.listener
        let handle = server.handle
        handle.task {
            guard let connection = try await listener.accept() else { return }
            let task = handle.task {
                await connection.withCancellationScope {
                    await connection.withCancellationScope {}
                    // The inner scope ended; the outer one still watches.
                    outcomes.add("covered \(connection.coversCancellation)")
                    parked.signal()
                    do {
                        _ = try await connection.read { $0.count }
                        outcomes.add("read returned")
                    } catch {
                        outcomes.add("\(error)")
                    }
                }
                outcomes.add("after the scope: covered \(connection.coversCancellation)")
            }
            reader.withLock { $0 = task }
            _ = await task.result
            // Still open, and no scope: a read by this task gets the next bytes.
            let next = try? await connection.read { Array($0) }
            outcomes.add(String(decoding: next ?? [], as: UTF8.self))
            connection.close()
        }
        let client = try TestClient(port: server.port)
        #expect(parked.wait(timeout: .now() + 30) == .success)
        try server.loopThread.waitUntilBlocked()
        reader.withLock { $0 }?.cancel()
        let ended = ["covered true", "cancelled", "after the scope: covered false"]
        #expect(waitUntil { outcomes.all == ended }, "\(outcomes.all)")
        try client.send(Array("after\n".utf8))
        #expect(waitUntil { outcomes.all == ended + ["after\n"] }, "\(outcomes.all)")
    }

    @Test("a write above the high-water mark waits, and resumes once the peer reads down to the low one")
    func writeWaitsForThePeer() throws {
        var options = TCPConnection.Options()
        options.highWaterMark = 64 * 1024
        options.lowWaterMark = 16 * 1024
        let server = try AsyncServer(connectionOptions: options)
        defer { try? server.stop() }
        let writes = Counter()
        let connection = Lock<AsyncTCPConnection?>(nil)
        let total = 4 * 1024 * 1024
        server.serve { accepted in
            connection.withLock { $0 = accepted }
            let chunk = [UInt8](repeating: UInt8(ascii: "w"), count: 64 * 1024)
            var sent = 0
            while sent < total {
                do { try await accepted.write(chunk) } catch { return }
                sent += chunk.count
                writes.add(1)
            }
            await accepted.closeLingering()
        }
        let client = try TestClient(port: server.port, receiveBuffer: 4096)
        let queued = { try server.loopThread.onLoop { _ in connection.withLock { $0?.queuedByteCount ?? 0 } } }
        // The client reads nothing yet: the server's queue passes the mark,
        // and the writer waits there.
        #expect(try waitUntil { try queued() > options.highWaterMark }, "never queued past the mark")
        let writesBefore = writes.current
        Thread.sleep(forTimeInterval: 0.2)
        #expect(writes.current == writesBefore, "the writer went on while the peer read nothing")
        #expect(try queued() <= options.highWaterMark + 64 * 1024, "the queue grew past one write over the mark")
        // Now the peer reads everything: the writer resumes and every byte arrives.
        var received = 0
        var wrong = 0
        let ending = client.receiveUntilEnd { _, bytes in
            received += bytes.count
            wrong += bytes.count { $0 != UInt8(ascii: "w") }
        }
        #expect(ending == .endOfFile)
        #expect(received == total)
        #expect(wrong == 0)
        #expect(writes.current == total / (64 * 1024))
    }

    @Test("when the loop stops, every waiting call ends with .loopStopped and every task finishes")
    func loopStoppedWithParkedTasks() async throws {
        let server = try AsyncServer()
        let outcomes = Seen<String>()
        let serving = server.serve { connection in
            do { _ = try await connection.read { $0.count } } catch { outcomes.add("\(error)") }
            connection.close()
        }
        let clients = try (0..<10).map { _ in try TestClient(port: server.port) }
        #expect(waitUntil { (try? server.loopThread.onLoop { _ in server.listener.tcpListener.openCount }) == 10 })
        try server.loopThread.waitUntilBlocked()
        try server.stop()
        #expect(outcomes.all == Array(repeating: "the loop stopped", count: 10))
        // The serving task itself ended with the loop.
        let result = await serving.result
        #expect(throws: AsyncTCPError.loopStopped) { try result.get() }
        _ = clients
    }

    /// Debug builds stop a program that uses a connection off its loop's
    /// thread while the loop runs: the child process makes a connection on
    /// its loop, and inside one iteration another thread ends its input
    /// (a call that reaches nothing else of the loop, so the connection's
    /// own check is the one that stops it).
    @Test("in a debug build, a connection used from another thread while the loop runs stops the program")
    func offThreadUseStopsTheProgram() async {
        #if DEBUG
            await #expect(processExitsWith: .failure) {
                let loop = try makeLoop()
                let pair = try system_socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue))
                    .get()
                let connection = try AsyncTCPConnection(loop: loop, fileDescriptor: FileDescriptor(rawValue: pair.0))
                let shared = Unchecked(connection)
                loop.schedule(after: .zero) {
                    let done = DispatchSemaphore(value: 0)
                    Thread {
                        shared.value.endInput()  // from the wrong thread: stops the program
                        done.signal()
                    }.start()
                    _ = done.wait(timeout: .now() + 60)
                    loop.stop()
                }
                try loop.run()
            }
        #endif
    }

    @Test("1,000 connections, each served by its own task on the loop")
    func thousandConnections() throws {
        let server = try AsyncServer()
        defer { try? server.stop() }
        let onLoop = Seen<Bool>()
        server.serve { connection in
            onLoop.add(server.handle.taskExecutor.isCurrent)
            await echo(connection)
        }
        var clients: [TestClient] = []
        for index in 0..<1_000 {
            let client = try TestClient(port: server.port)
            try client.send(Array("client \(index)\n".utf8))
            clients.append(client)
        }
        for (index, client) in clients.enumerated() {
            let expected = Array("client \(index)\n".utf8)
            #expect(client.receive(count: expected.count) == expected)
        }
        #expect(onLoop.all.count == 1_000 && onLoop.all.allSatisfy { $0 })
    }
}
