// The reactor's own work per event, counted in instructions rather than
// timed: `Benchmarks/loop-instructions.sh` runs this under callgrind, which
// counts every user-space instruction exactly and the kernel's none. So the
// figure does not move with the machine's load or the system calls' cost,
// and a change of a few instructions per event shows.
//
// The shape is the loaded server's: several connections ready per wake-up
// (four, as upper-echo sees at 100 connections x pipeline 16), each with a
// 64 B request that the handler upper-cases in place and writes back, as
// `UpperEchoServer` does. One iteration: the clients write, one `runOnce`
// serves them all, the clients read the replies and check them.
//
// With `async` as the second argument the connections are
// `AsyncTCPConnection`s, each served by a task on the loop's task executor
// that reads, upper-cases and writes as `AsyncUpperEchoServer` does: the
// same `runOnce` then wakes the four tasks and runs their jobs.
import Glibc
import Reactor
import Selectors
import SystemPackage
import UpperEcho

/// `UpperEchoServer`'s per-chunk work, without its counters and logging.
final class UpperCaseEcho: TCPConnectionHandler {
    func connection(_ connection: TCPConnection, didRead bytes: UnsafeMutableRawBufferPointer) {
        Uppercase.apply(bytes)
        connection.write(UnsafeRawBufferPointer(bytes))
    }

    func connectionDidClose(_ connection: TCPConnection, reason: TCPConnection.CloseReason) {
        fatalError("a connection closed: \(reason)")
    }
}

/// `AsyncUpperEchoServer`'s per-chunk work, without its counters and logging.
@Sendable func serve(_ connection: AsyncTCPConnection, buffer: UnsafeMutableRawBufferPointer) async {
    do throws(AsyncTCPError) {
        while let count = try await connection.read({ bytes in
            Uppercase.apply(bytes)
            return bytes.count
        }) {
            try await connection.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
    } catch {
        fatalError("a connection failed: \(error)")
    }
    fatalError("a connection ended")
}

@main
struct LoopInstructions {
    static let connectionsPerWakeup = 4
    static let payloadSize = 64

    static func main() throws {
        let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 100_000 : 100_000
        let async = CommandLine.arguments.count > 2 && CommandLine.arguments[2] == "async"
        let loop = try EventLoop(selector: try EpollSelector<Int>())
        let handler = UpperCaseEcho()
        var connections: [AnyObject] = []
        var clients: [CInt] = []
        for _ in 0..<connectionsPerWakeup {
            var fds: (CInt, CInt) = (-1, -1)
            let type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
            let made = withUnsafeMutableBytes(of: &fds) {
                socketpair(AF_UNIX, type, 0, $0.baseAddress!.assumingMemoryBound(to: CInt.self))
            }
            guard made == 0 else { fatalError("socketpair: errno \(errno)") }
            if async {
                let connection = try AsyncTCPConnection(loop: loop, fileDescriptor: FileDescriptor(rawValue: fds.0))
                // The loop's buffer, used only on the loop's thread.
                nonisolated(unsafe) let buffer = loop.readBuffer
                loop.handle.task { await connection.withCancellationScope { await serve(connection, buffer: buffer) } }
                connections.append(connection)
            } else {
                connections.append(
                    try TCPConnection(loop: loop, fileDescriptor: FileDescriptor(rawValue: fds.0), handler: handler))
            }
            clients.append(fds.1)
        }
        let request = UnsafeMutableRawBufferPointer.allocate(byteCount: payloadSize, alignment: 16)
        let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: payloadSize, alignment: 16)
        for index in 0..<payloadSize { request[index] = 0x61 + UInt8(index % 26) }
        for _ in 0..<iterations {
            for client in clients {
                guard write(client, request.baseAddress, payloadSize) == payloadSize else { fatalError("write") }
            }
            // No timeout: every client has written, so the wait returns at once.
            try loop.runOnce()
            for client in clients {
                guard read(client, reply.baseAddress, payloadSize) == payloadSize, reply[0] == 0x41 else {
                    fatalError("no reply, or not upper-cased")
                }
            }
        }
        print("\(iterations) iterations, \(connectionsPerWakeup) events each\(async ? ", async" : "")")
        withExtendedLifetime(connections) {}
    }
}
