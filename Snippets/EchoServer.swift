// An echo server on the reactor: every byte a client sends comes back.
// `swift run EchoServer [port]` (8007 by default), then `nc 127.0.0.1 8007`;
// Ctrl-C closes it gracefully.
import Glibc
import Reactor
import Selectors

// snippet.handler
/// Echoes every chunk, and keeps the open connections for the shutdown.
final class Echo: TCPConnectionHandler {
    var open: [ObjectIdentifier: TCPConnection] = [:]
    var listener: TCPListener?
    var onLastClose: (() -> Void)?

    func connection(_ connection: TCPConnection, didRead bytes: UnsafeMutableRawBufferPointer) {
        // Sent at once; what the kernel does not take is queued, and past
        // `highWaterMark` (64 KiB) the connection stops reading its peer.
        connection.write(UnsafeRawBufferPointer(bytes))
    }

    func connectionDidClose(_ connection: TCPConnection, reason: TCPConnection.CloseReason) {
        open[ObjectIdentifier(connection)] = nil
        listener?.connectionDidClose()
        print("closed after \(connection.bytesReceived) bytes: \(reason)")
        if open.isEmpty { onLastClose?() }
    }
}
// snippet.end

// snippet.listener
let loop = try EventLoop(selector: try EpollSelector<Int>())
let echo = Echo()
let port = CommandLine.arguments.dropFirst().first.flatMap { UInt16($0) } ?? 8007
let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: port) { fd in
    // The connection owns `fd` from here on (and closes it if it throws).
    do {
        let connection = try TCPConnection(loop: loop, fileDescriptor: fd, handler: echo)
        echo.open[ObjectIdentifier(connection)] = connection
    } catch {
        echo.listener?.connectionDidClose()
    }
}
echo.listener = listener
print("listening on \(listener.localAddress)")
// snippet.end

// snippet.shutdown
// Ctrl-C: stop accepting, deliver every queued reply, wait for each peer to
// finish (at most 5 s), then stop the loop.
let signals = try SignalSource(loop: loop, signals: [SIGINT, SIGTERM]) { _ in
    listener.close()
    echo.onLastClose = { loop.stop() }
    if echo.open.isEmpty { return loop.stop() }
    for connection in echo.open.values { connection.closeLingering() }
    loop.schedule(after: .seconds(5)) { for connection in echo.open.values { connection.abort() } }
}
try loop.run()
signals.close()
print("stopped")
// snippet.end
