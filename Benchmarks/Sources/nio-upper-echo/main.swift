// nio-upper-echo: the lesson's service on SwiftNIO, the way its docs
// recommend: one event loop, upper-case in place in channelRead, write there,
// flush in channelReadComplete.
//
// Usage: nio-upper-echo [PORT]   (0 picks a free port)
// Prints: listening on 127.0.0.1:PORT (swiftnio)
@preconcurrency import Glibc
import NIOCore
import NIOPosix

final class UpperEchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = Self.unwrapInboundIn(data)
        // The same branch-free transform as upper-echo's, so that the
        // comparison measures the I/O path, not the loop.
        buffer.withUnsafeMutableReadableBytes { bytes in
            for index in bytes.indices {
                let byte = bytes[index]
                bytes[index] = byte &- 0x61 < 26 ? byte &- 0x20 : byte
            }
        }
        context.write(Self.wrapOutboundOut(buffer), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 8000 : 8000
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 511)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(UpperEchoHandler())
        }
    }
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 4)
let channel = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
print("listening on 127.0.0.1:\(channel.localAddress?.port ?? port) (swiftnio)")
fflush(stdout)
try channel.closeFuture.wait()
