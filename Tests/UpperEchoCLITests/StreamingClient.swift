import Foundation
import TestSupport
import Synchronization
import SystemPackage
import Syscalls

/// A client that sends without pause on one thread and reads its replies on
/// another, checking every byte, until the server closes the connection.
///
/// Byte `n` of client `k` is a function of `n` and `k` alone, so the reader
/// checks each reply byte against `bytes.upper()` of what was sent at that
/// offset without keeping a copy.
final class StreamingClient: Sendable {
    let index: Int
    private let fd: CInt
    private let sentCount = Atomic<Int>(0)
    private let receivedCount = Atomic<Int>(0)
    private let firstMismatch = Atomic<Int>(-1)
    private let senderDone = Atomic<Bool>(false)
    private let readerEnding = Lock<Ending?>(nil)

    static func byte(client: Int, offset: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: (offset &+ client &* 13) % 251)
    }

    /// Connects and starts both threads.
    init(index: Int, port: UInt16) throws {
        self.index = index
        let type = CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)
        fd = try system_socket(AF_INET, type).mapError { ClientError("socket", $0) }.get()
        _ = system_setsockopt_timeout(fd, SO_RCVTIMEO, .seconds(30))
        _ = system_setsockopt_timeout(fd, SO_SNDTIMEO, .seconds(30))
        if case .failure(let errno) = system_connect(fd, SocketAddress(host: "127.0.0.1", port: port)!) {
            _ = system_close(fd)
            throw ClientError("connect", errno)
        }
        Thread { [self] in send() }.start()
        Thread { [self] in read() }.start()
    }

    deinit { _ = system_close(fd) }

    var sent: Int { sentCount.load(ordering: .acquiring) }
    var received: Int { receivedCount.load(ordering: .acquiring) }
    /// The offset of the first reply byte that was not `bytes.upper()` of the byte sent; `nil`: none.
    var mismatch: Int? { firstMismatch.load(ordering: .acquiring) < 0 ? nil : firstMismatch.load(ordering: .acquiring) }
    /// How the reader ended; `nil` while it runs.
    var ending: Ending? { readerEnding.withLock { $0 } }
    var isFinished: Bool { ending != nil && senderDone.load(ordering: .acquiring) }

    private func send() {
        var chunk = [UInt8](repeating: 0, count: 4096)
        var offset = 0
        while readerEnding.withLock({ $0 == nil }) {
            for i in chunk.indices { chunk[i] = Self.byte(client: index, offset: offset + i) }
            var done = 0
            while done < chunk.count {
                let result = chunk.withUnsafeBytes { system_send(fd, UnsafeRawBufferPointer(rebasing: $0[done...])) }
                guard case .success(let count) = result else {
                    senderDone.store(true, ordering: .releasing)
                    return
                }
                done += count
                sentCount.add(count, ordering: .releasing)
            }
            offset += chunk.count
        }
        senderDone.store(true, ordering: .releasing)
    }

    private func read() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var offset = 0
        let ending: Ending
        while true {
            let result = buffer.withUnsafeMutableBytes { system_recv(fd, $0) }
            switch result {
            case .success(0): ending = .endOfFile
            case .success(let count):
                for i in 0..<count where buffer[i] != pythonUpper(Self.byte(client: index, offset: offset + i)) {
                    _ = firstMismatch.compareExchange(
                        expected: -1, desired: offset + i, ordering: .acquiringAndReleasing)
                    break
                }
                offset += count
                receivedCount.store(offset, ordering: .releasing)
                continue
            case .failure(.connectionReset): ending = .reset
            case .failure(.resourceTemporarilyUnavailable): ending = .timedOut
            case .failure(let errno): ending = .failed(errno)
            }
            break
        }
        readerEnding.withLock { $0 = ending }
        // The server has finished with us: stop the sender (a blocked send
        // fails at once) and tell the server we are done (FIN).
        _ = system_shutdown(fd, CInt(SHUT_RDWR))
    }
}
