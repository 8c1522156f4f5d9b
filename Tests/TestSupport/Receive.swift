import Syscalls

/// Receives from the blocking socket `fd` until `count` bytes have arrived,
/// the peer closes, or a `recv` times out; returns what arrived, which a test
/// then compares. The test clients of every target read through this.
public func receiveBytes(from fd: CInt, count: Int) -> [UInt8] {
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while received.count < count {
        let wanted = min(chunk.count, count - received.count)
        let result = chunk.withUnsafeMutableBytes {
            system_recv(fd, UnsafeMutableRawBufferPointer(rebasing: $0[..<wanted]))
        }
        guard case .success(let n) = result, n > 0 else { break }
        received += chunk[..<n]
    }
    return received
}

/// Sends all of `bytes` on the blocking socket `fd`, however many `send`
/// calls it takes; throws the first error (`"send after N bytes: ..."`).
/// The test clients of every target write through this.
public func sendAll(_ bytes: UnsafeRawBufferPointer, to fd: CInt) throws {
    var sent = 0
    while sent < bytes.count {
        let result = system_send(fd, UnsafeRawBufferPointer(rebasing: bytes[sent...]))
        sent += try result.mapError { ClientError("send after \(sent) bytes", $0) }.get()
    }
}

/// `sendAll` for an array.
public func sendAll(_ bytes: [UInt8], to fd: CInt) throws {
    try bytes.withUnsafeBytes { try sendAll($0, to: fd) }
}
