// An echo server on every core: one event loop per CPU, each on its own
// thread, one port spread over them. `swift run GroupEchoServer [port]
// [reuseport|acceptor]` (8008, reuseport by default), then `nc 127.0.0.1
// 8008`; Ctrl-C stops every loop.
@preconcurrency import Glibc
import Reactor
import Selectors

/// One loop's echo: used only on that loop's thread.
final class LoopEcho: TCPConnectionHandler {
    var open: [ObjectIdentifier: TCPConnection] = [:]
    var listener: TCPListener?
    let index: Int

    init(index: Int) { self.index = index }

    func connection(_ connection: TCPConnection, didRead bytes: UnsafeMutableRawBufferPointer) {
        connection.write(UnsafeRawBufferPointer(bytes))
    }

    func connectionDidClose(_ connection: TCPConnection, reason: TCPConnection.CloseReason) {
        open[ObjectIdentifier(connection)] = nil
        listener?.connectionDidClose()
    }
}

let arguments = CommandLine.arguments.dropFirst()
let port = arguments.first.flatMap { UInt16($0) } ?? 8008
let balance: Balance = arguments.dropFirst().first == "acceptor" ? .acceptor(.leastConnections) : .reusePort

// snippet.group
let loops = LoopGroup<EpollSelector<Int>>.defaultLoopCount
// The sockets are bound here, before any loop runs: a port in use fails now.
let port8008 = try GroupListener(host: "127.0.0.1", port: port, loops: loops, balance: balance)
let group = try LoopGroup(loops: loops, selector: { try EpollSelector<Int>() }) { index, loop in
    // On loop `index`'s own thread: everything it serves is made here.
    let echo = LoopEcho(index: index)
    echo.listener = try TCPListener(loop: loop, group: port8008, member: index) { fd in
        guard let connection = try? TCPConnection(loop: loop, fileDescriptor: fd, handler: echo) else { return }
        echo.open[ObjectIdentifier(connection)] = connection
    }
    if index == 0 {
        // Loop 0 takes the signals and stops the whole group (from its thread: `stop` is Sendable).
        _ = try SignalSource(loop: loop, signals: [SIGINT, SIGTERM]) { _ in
            print("connections per loop: \(port8008.givenCounts)")
            group.stop()
        }
    }
}
// snippet.end
print("echoing on 127.0.0.1:\(port8008.localAddress.port) over \(loops) loops (\(balance))")
fflush(stdout)
try group.join()
