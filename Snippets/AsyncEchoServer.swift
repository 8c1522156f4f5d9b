// An echo server in async/await, on the loop's own thread: one task per
// connection, each reading and writing an `AsyncTCPConnection`. `swift run
// AsyncEchoServer [port]` (8009 by default), then `nc 127.0.0.1 8009`;
// Ctrl-C stops it.
@preconcurrency import Glibc
import Reactor
import Selectors

let port = CommandLine.arguments.dropFirst().first.flatMap { UInt16($0) } ?? 8009
let loop = try EventLoop(selector: try EpollSelector<Int>())

// snippet.async
let listener = try AsyncTCPListener(loop: loop, host: "127.0.0.1", port: port)
loop.handle.task {
    // Each connection gets a task of its own, on the loop's thread.
    try await listener.serve { connection in
        // `read` waits only when nothing has arrived; `nil` is the end of input.
        while let bytes = try? await connection.read({ Array($0) }) {
            do { try await connection.write(bytes) } catch { break }
        }
        await connection.closeLingering()
    }
}
// snippet.end

let signals = try SignalSource(loop: loop, signals: [SIGINT, SIGTERM]) { _ in loop.stop() }
print("echoing on 127.0.0.1:\(listener.localAddress.port); Ctrl-C stops")
try loop.run()
signals.close()
