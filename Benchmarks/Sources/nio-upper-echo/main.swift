// nio-upper-echo: the lesson's service on SwiftNIO, the way its docs
// recommend: one event loop (or --threads N, NIO's own spread of accepted
// channels over a MultiThreadedEventLoopGroup, round robin), upper-case in
// place in channelRead, write there, flush in channelReadComplete.
//
// Usage: nio-upper-echo [PORT] [--threads N]   (0 picks a free port; 1 thread by default)
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

let arguments = Array(CommandLine.arguments.dropFirst())
let port = arguments.first.flatMap { Int($0) } ?? 8000
let threads = arguments.firstIndex(of: "--threads").flatMap { index in
    index + 1 < arguments.count ? Int(arguments[index + 1]) : nil
} ?? 1
let group = MultiThreadedEventLoopGroup(numberOfThreads: max(threads, 1))
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
