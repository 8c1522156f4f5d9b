// nio-async-upper-echo: the lesson's service on SwiftNIO's async API, the
// way Hummingbird serves connections: one event loop, the server channel
// and every accepted channel wrapped in an NIOAsyncChannel, one task per
// connection in a discarding task group on the global executor (no executor
// preference), each reading ByteBuffers from the channel's inbound sequence,
// upper-casing them in place and writing them back through its outbound
// writer. Socket options as nio-upper-echo's: backlog 511, SO_REUSEADDR,
// TCP_NODELAY and at most 4 reads per wake-up on the connections.
//
// Usage: nio-async-upper-echo [PORT]   (0 picks a free port)
// Prints: listening on 127.0.0.1:PORT (swiftnio-async)
@preconcurrency import Glibc
import NIOCore
import NIOPosix

/// Upper-cases ASCII a-z in place with the same branch-free transform as
/// upper-echo's and nio-upper-echo's, so that the comparison measures the
/// I/O path, not the loop.
func upperCase(_ buffer: inout ByteBuffer) {
    buffer.withUnsafeMutableReadableBytes { bytes in
        for index in bytes.indices {
            let byte = bytes[index]
            bytes[index] = byte &- 0x61 < 26 ? byte &- 0x20 : byte
        }
    }
}

// As many descriptors as the hard limit allows (the 10,000-connection scenarios).
var limit = rlimit()
if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 8000
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let serverChannel = try await ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 511)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 4)
    .bind(host: "127.0.0.1", port: port) { channel in
        channel.eventLoop.makeCompletedFuture {
            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
    }
print("listening on 127.0.0.1:\(serverChannel.channel.localAddress?.port ?? port) (swiftnio-async)")
fflush(stdout)

try await serverChannel.executeThenClose { inbound in
    try await withThrowingDiscardingTaskGroup { group in
        for try await connection in inbound {
            group.addTask {
                do {
                    try await connection.executeThenClose { input, output in
                        for try await var buffer in input {
                            upperCase(&buffer)
                            try await output.write(buffer)
                        }
                    }
                } catch {
                    // The client reset the connection or went away: that
                    // connection is over (executeThenClose closed it), the
                    // server goes on.
                }
            }
        }
    }
}
