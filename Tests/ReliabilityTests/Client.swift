import Foundation
import Syscalls
import SystemPackage
import TestSupport

/// Byte `offset` of stream `stream` is `(offset + 13 * stream) % 251`: a
/// function of the two alone, so that a reader checks each reply byte
/// without a copy of what was sent. It takes 251 values, lower-case letters
/// among them. Chunks are sliced from precomputed tables, so that a debug
/// build still moves hundreds of megabytes a second.
enum StreamPattern {
    private static let period = 251
    private static let table: [UInt8] = (0..<(251 + 65536)).map { UInt8($0 % 251) }
    private static let upperTable: [UInt8] = table.map(pythonUpper)

    /// Byte `offset` of stream `stream`.
    static func byte(_ stream: Int, _ offset: Int) -> UInt8 {
        UInt8((offset + 13 * stream) % period)
    }

    /// Fills `buffer` (at most 64 KiB) with stream `stream` from `offset` on.
    static func fill(_ buffer: UnsafeMutableRawBufferPointer, stream: Int, offset: Int) {
        let start = (offset + 13 * stream) % period
        table.withUnsafeBytes {
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[start..<start + buffer.count]))
        }
    }

    /// The index in `reply` (at most 64 KiB, at `offset` of the reply stream)
    /// of the first byte that is not `pythonUpper` of what stream `stream`
    /// sent there; `nil` if all are right.
    static func firstMismatch(in reply: UnsafeRawBufferPointer, stream: Int, offset: Int) -> Int? {
        let start = (offset + 13 * stream) % period
        return upperTable.withUnsafeBytes { expected in
            if memcmp(reply.baseAddress!, expected.baseAddress! + start, reply.count) == 0 { return nil }
            return reply.indices.first { reply[$0] != expected[start + $0] }
        }
    }
}

/// How a stream of replies ended, as the client saw it.
enum Ending: Equatable, CustomStringConvertible {
    /// All the expected bytes arrived (the connection may still be open).
    case complete
    /// The server closed gracefully (`recv` returned 0).
    case endOfFile
    /// The server reset the connection (`ECONNRESET`).
    case reset
    /// Nothing came before the receive timeout.
    case timedOut
    /// Another errno.
    case failed(Errno)

    var description: String {
        switch self {
        case .complete: "complete"
        case .endOfFile: "end of file"
        case .reset: "reset"
        case .timedOut: "timed out"
        case .failed(let errno): "\(errno)"
        }
    }
}

/// What a verifying reader saw.
struct Verification: CustomStringConvertible {
    /// Bytes received.
    var received = 0
    /// The offset of the first byte that was not `pythonUpper` of the byte sent.
    var firstMismatch: Int?
    /// How it ended.
    var ending = Ending.complete

    /// Whether exactly `count` bytes arrived, every one right.
    func isExact(_ count: Int) -> Bool { received == count && firstMismatch == nil && ending == .complete }

    var description: String {
        "received \(received), first mismatch \(firstMismatch.map(String.init) ?? "none"), \(ending)"
    }
}

/// The shared `TestClient`, with what the scenarios add: streams sent and
/// verified byte by byte, paced reads for slow readers, single `send` calls,
/// `TCP_NODELAY`, and a reset.
///
/// `@unchecked Sendable`: a sender thread and a reader thread may share one
/// client; only `close()` and `reset()` change it, once both are done.
final class Client: TestClient, @unchecked Sendable {
    /// `TCP_NODELAY`: each small `send` leaves as its own segment.
    func setNoDelay() {
        _ = system_setsockopt(fd, .noDelay, 1)
    }

    /// One `send` call; what it returned.
    func sendOnce(_ bytes: UnsafeRawBufferPointer, flags: CInt = 0) -> Result<Int, Errno> {
        system_send(fd, bytes, flags)
    }

    /// Sends `count` bytes of stream `stream` from `offset` on, in chunks of `chunk`.
    /// Calls `onProgress` with the bytes sent so far after each chunk.
    func sendStream(
        _ stream: Int, from offset: Int = 0, count: Int, chunk: Int = 65536, onProgress: ((Int) -> Void)? = nil
    ) throws {
        var buffer = [UInt8](repeating: 0, count: min(chunk, 65536))
        var done = 0
        while done < count {
            let length = min(buffer.count, count - done)
            try buffer.withUnsafeMutableBytes { bytes in
                let part = UnsafeMutableRawBufferPointer(rebasing: bytes[..<length])
                StreamPattern.fill(part, stream: stream, offset: offset + done)
                try send(UnsafeRawBufferPointer(part))
            }
            done += length
            onProgress?(done)
        }
    }

    /// Receives `count` bytes of the reply to stream `stream` and checks each.
    func verify(
        count: Int, stream: Int,
        pace: (_ received: Int) -> (bytes: Int, sleep: Duration) = { _ in (65536, .zero) }
    ) -> Verification {
        verify(count: count, pace: pace) { StreamPattern.firstMismatch(in: $1, stream: stream, offset: $0) }
    }

    /// Receives `count` bytes of the reply to `sent` and checks each.
    func verify(count: Int, sent: [UInt8]) -> Verification {
        let expected = sent.map(pythonUpper)
        return expected.withUnsafeBytes { expected in
            verify(count: count) { offset, reply in
                if memcmp(reply.baseAddress!, expected.baseAddress! + offset, reply.count) == 0 { return nil }
                return reply.indices.first { reply[$0] != expected[offset + $0] }
            }
        }
    }

    /// Receives `count` bytes; `check(offset, chunk)` returns the index in
    /// `chunk` of its first wrong byte. `pace` says, before each `recv`, how
    /// many bytes to ask for and how long to sleep first: a slow reader.
    func verify(
        count: Int,
        pace: (_ received: Int) -> (bytes: Int, sleep: Duration) = { _ in (65536, .zero) },
        check: (_ offset: Int, _ chunk: UnsafeRawBufferPointer) -> Int?
    ) -> Verification {
        var result = Verification()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while result.received < count {
            let (wanted, sleep) = pace(result.received)
            if sleep > .zero { Thread.sleep(forTimeInterval: seconds(sleep)) }
            let length = min(wanted, buffer.count, count - result.received)
            let outcome = buffer.withUnsafeMutableBytes {
                system_recv(fd, UnsafeMutableRawBufferPointer(rebasing: $0[..<length]))
            }
            switch outcome {
            case .success(0):
                result.ending = .endOfFile
                return result
            case .success(let n):
                if result.firstMismatch == nil,
                    let bad = buffer.withUnsafeBytes({
                        check(result.received, UnsafeRawBufferPointer(rebasing: $0[..<n]))
                    })
                {
                    result.firstMismatch = result.received + bad
                }
                result.received += n
            case .failure(.connectionReset):
                result.ending = .reset
                return result
            case .failure(.resourceTemporarilyUnavailable):
                result.ending = .timedOut
                return result
            case .failure(let errno):
                result.ending = .failed(errno)
                return result
            }
        }
        return result
    }

    /// One `recv` of one byte: `.endOfFile`, `.reset`, `.timedOut`, or
    /// `.complete` if a byte came.
    func streamEnding() -> Ending {
        var byte: UInt8 = 0
        switch withUnsafeMutableBytes(of: &byte, { system_recv(fd, $0) }) {
        case .success(0): return .endOfFile
        case .success: return .complete
        case .failure(.connectionReset): return .reset
        case .failure(.resourceTemporarilyUnavailable): return .timedOut
        case .failure(let errno): return .failed(errno)
        }
    }

    /// Closes with a reset (`closeWithReset`); if `SO_LINGER` cannot be
    /// set, closes anyway.
    func reset() {
        if (try? closeWithReset()) == nil { close() }
    }
}

/// Runs `body(index)` on `count` threads and waits (bounded) for all of them;
/// returns whether they all finished in time.
@discardableResult
func runThreads(_ count: Int, timeout: Duration, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            body(index)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    return group.wait(timeout: .now() + seconds(timeout)) == .success
}
