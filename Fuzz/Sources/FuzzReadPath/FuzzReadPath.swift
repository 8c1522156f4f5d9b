// Drives the event loop's read path with random chunking: the input's bytes
// are written to a connection in chunks of random sizes, with loop
// iterations in between and the reader sometimes falling behind; every byte
// must come back upper-cased, in order, and the connection must end cleanly.
import Glibc
import Reactor
import Selectors
import SystemPackage
import UpperEcho

final class EchoHandler: TCPConnectionHandler {
    var closed: TCPConnection.CloseReason?

    func connection(_ connection: TCPConnection, didRead bytes: UnsafeMutableRawBufferPointer) {
        Uppercase.apply(bytes)
        connection.write(UnsafeRawBufferPointer(bytes))
    }

    func connectionDidClose(_ connection: TCPConnection, reason: TCPConnection.CloseReason) {
        closed = reason
    }
}

/// libFuzzer's entry point: runs one input; a failed precondition is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReadPath(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    var fds: [CInt] = [0, 0]
    precondition(socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
    let client = fds[1]
    defer { close(client) }
    let loop = try! EventLoop(selector: try EpollSelector<Int>(), readBufferSize: 1 + Int(input[0]) % 64)
    let handler = EchoHandler()
    var options = TCPConnection.Options()
    options.highWaterMark = 1 + Int(input[0]) * 3
    options.lowWaterMark = options.highWaterMark / 2
    let connection = try! TCPConnection(
        loop: loop, fileDescriptor: FileDescriptor(rawValue: fds[0]), options: options, handler: handler)
    var sent = 0
    var received: [UInt8] = []
    var chunkSeed = input.count > 1 ? input[1] : 1
    var scratch = [UInt8](repeating: 0, count: 4096)
    while sent < input.count || received.count < input.count {
        chunkSeed = chunkSeed &* 31 &+ 7
        if sent < input.count {
            let chunk = min(1 + Int(chunkSeed) % 40, input.count - sent)
            let written = input[sent..<(sent + chunk)].withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
            if written > 0 { sent += written }
        }
        try! loop.runOnce(timeout: .zero)
        if chunkSeed & 3 != 0 || sent == input.count {  // the reader sometimes falls behind
            let count = read(client, &scratch, 1 + Int(chunkSeed) % scratch.count)
            if count > 0 { received += scratch[..<count] }
        }
        precondition(handler.closed == nil, "the connection closed early: \(handler.closed!)")
    }
    precondition(received == Uppercase.applied(to: input), "the echo differs from the upper-cased input")
    shutdown(client, CInt(SHUT_WR))
    for _ in 0..<100 where handler.closed == nil { try! loop.runOnce(timeout: .milliseconds(10)) }
    precondition(handler.closed == .endOfInput, "half-close did not end the connection cleanly")
    precondition(connection.isClosed)
    return 0
}
