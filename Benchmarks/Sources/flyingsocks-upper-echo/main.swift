// flyingsocks-upper-echo: the lesson's service on FlyingSocks, the async
// socket layer under the FlyingFox HTTP server: its default pool on Linux
// (`SocketPool<ePoll>`, edge-triggered epoll, 20 events per wait, run in a
// task of its own), a listening `Socket` wrapped in an `AsyncSocket`, an
// accept loop, and one task per connection in a discarding task group, as
// FlyingFox's HTTPServer runs them. Each task reads what is available
// (`read(atMost:)`, at most 4096 bytes a call in FlyingSocks), upper-cases
// it and writes it all back (`write(_:)`, which takes `Data`). SO_REUSEADDR
// and backlog 511 on the listener, TCP_NODELAY on every connection.
//
// Usage: flyingsocks-upper-echo [PORT]   (0 picks a free port)
// Prints: listening on 127.0.0.1:PORT (flyingsocks)
import FlyingSocks
@preconcurrency import Glibc

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Upper-cases ASCII a-z in place with the same branch-free transform as
/// upper-echo's and the other peers'.
func upperCase(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBufferPointer { bytes in
        for index in bytes.indices {
            let byte = bytes[index]
            bytes[index] = byte &- 0x61 < 26 ? byte &- 0x20 : byte
        }
    }
}

/// Echoes one connection upper-cased until the client closes it, resets it
/// or goes away, then closes it.
func serve(_ connection: AsyncSocket) async {
    do {
        while true {
            var bytes = try await connection.read(atMost: 4096)
            upperCase(&bytes)
            try await connection.write(Data(bytes))
        }
    } catch {
        // End of input (SocketError.disconnected), a reset or a vanished
        // client: this connection is over, the server goes on.
    }
    try? connection.close()
}

/// Accepts connections for ever, each served by a task of its own.
func acceptConnections(on listener: AsyncSocket) async {
    let noDelay = BoolSocketOption(level: Int32(IPPROTO_TCP), name: TCP_NODELAY)
    await withDiscardingTaskGroup { connections in
        while true {
            let connection: AsyncSocket
            do {
                connection = try await listener.accept()
            } catch {
                // A connection reset before it was accepted, or out of
                // descriptors: try again shortly rather than spin.
                try? await Task.sleep(for: .milliseconds(10))
                continue
            }
            try? connection.socket.setValue(true, for: noDelay)
            connections.addTask { await serve(connection) }
        }
    }
}

// As many descriptors as the hard limit allows (the 10,000-connection scenarios).
var limit = rlimit()
if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

let port = CommandLine.arguments.dropFirst().first.flatMap { UInt16($0) } ?? 8000
let pool: SocketPool<ePoll> = .ePoll()
try await pool.prepare()
let socket = try Socket(domain: AF_INET, type: .stream)
try socket.setValue(true, for: .localAddressReuse)
try socket.bind(to: sockaddr_in.inet(ip4: "127.0.0.1", port: port))
try socket.listen(maxPendingConnection: 511)
var boundPort = port
if case .ip4(_, let actual) = try socket.sockname() {
    boundPort = actual
}
let listener = try AsyncSocket(socket: socket, pool: pool)
print("listening on 127.0.0.1:\(boundPort) (flyingsocks)")
fflush(stdout)

try await withThrowingTaskGroup { group in
    group.addTask { try await pool.run() }
    group.addTask { await acceptConnections(on: listener) }
    try await group.next()
}
