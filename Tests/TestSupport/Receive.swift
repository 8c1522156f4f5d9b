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
