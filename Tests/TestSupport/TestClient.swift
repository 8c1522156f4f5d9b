import CEpollShim
import Foundation
import Synchronization
import Syscalls
import SystemPackage

/// The blocking TCP client every test target uses. Every `recv` and `send`
/// gives up after `timeout` (`SO_RCVTIMEO`, `SO_SNDTIMEO`), so a broken server
/// fails a test instead of hanging it. One thread may send while another
/// receives; `close` only once both are done. Open, for a suite that adds
/// steps of its own (ReliabilityTests' stream client).
open class TestClient: ClientSocket, @unchecked Sendable {
    /// Connects to `host:port` (a numeric address, 127.0.0.1 unless told).
    /// A small `receiveBuffer` or `sendBuffer` (`SO_RCVBUF`, `SO_SNDBUF`, set
    /// before connecting so that the window is small from the start, and the
    /// kernel's autotuning is off) makes the server's queue fill sooner.
    public init(
        port: UInt16, host: String = "127.0.0.1", timeout: Duration = .seconds(30), receiveBuffer: CInt? = nil,
        sendBuffer: CInt? = nil
    ) throws {
        super.init(
            fd: try openClientSocket(
                port: port, host: host, timeout: timeout, receiveBuffer: receiveBuffer, sendBuffer: sendBuffer))
    }

    /// Sets how long a `recv` or a `send` may block.
    public func setTimeout(_ timeout: Duration) throws {
        try setClientTimeout(fd, timeout)
    }

    /// The client's own port, which the server sees as the peer's.
    public var localPort: UInt16 { (try? system_getsockname(fd).get().port) ?? 0 }

    /// Sends all of `bytes`, however many `send` calls it takes.
    public func send(_ bytes: some Collection<UInt8>) throws {
        try sendAll(Array(bytes), to: fd)
    }

    /// Sends all of `bytes`.
    public func send(_ bytes: UnsafeRawBufferPointer) throws {
        try sendAll(bytes, to: fd)
    }

    /// Sends the text's UTF-8 bytes.
    public func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    /// One `recv` of at most `buffer.count` bytes: 0 at end of input.
    public func receiveSome(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try system_recv(fd, buffer).mapError { StepError("recv", $0) }.get()
    }

    /// Receives until `count` bytes have arrived, the server closes, or a
    /// `recv` times out; returns what arrived, which a test compares.
    public func receive(count: Int) -> [UInt8] {
        receiveBytes(from: fd, count: count)
    }

    /// Receives `expected.utf8.count` bytes and decodes them.
    public func receiveText(_ expected: String) -> String {
        String(decoding: receive(count: expected.utf8.count), as: UTF8.self)
    }

    /// Sends `text` and returns whether `bytes.upper()` of it came back.
    public func roundTrip(_ text: String) -> Bool {
        guard (try? send(text)) != nil else { return false }
        return receive(count: text.utf8.count) == pythonUpper(Array(text.utf8))
    }

    /// Sends `text` and receives as many bytes back.
    public func echo(_ text: String) throws -> String {
        try send(text)
        return receiveText(text)
    }

    /// Sends `byte(offset)` for offset 0, 1, ... without blocking and without
    /// reading, until nothing more has gone in for `stall`: every buffer
    /// between here and the server is full and the server has stopped
    /// reading. Returns how many bytes were sent.
    public func sendUntilStalled(stall: Duration = .milliseconds(200), _ byte: (Int) -> UInt8) -> Int {
        var sent = 0
        var lastProgress = ContinuousClock.now
        var chunk = [UInt8](repeating: 0, count: 65536)
        while ContinuousClock.now - lastProgress < stall && sent < 256 << 20 {
            for i in chunk.indices { chunk[i] = byte(sent + i) }
            let result = chunk.withUnsafeBytes { system_send(fd, $0, CInt(MSG_DONTWAIT)) }
            if case .success(let count) = result, count > 0 {
                sent += count
                lastProgress = ContinuousClock.now
            } else {
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
        return sent
    }

    /// Receives until the server closes or a `recv` times out, handing each
    /// chunk to `inspect` with its offset in the stream; returns how it ended.
    public func receiveUntilEnd(_ inspect: (_ offset: Int, _ bytes: ArraySlice<UInt8>) -> Void) -> Ending {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var offset = 0
        while true {
            switch buffer.withUnsafeMutableBytes({ system_recv(fd, $0) }) {
            case .success(0): return .endOfFile
            case .success(let count):
                inspect(offset, buffer[..<count])
                offset += count
            case .failure(.connectionReset): return .reset
            case .failure(.resourceTemporarilyUnavailable): return .timedOut
            case .failure(let errno): return .failed(errno)
            }
        }
    }

    /// One `recv` (waiting at most the receive timeout): what the server did.
    public func ending() -> Ending {
        var byte: UInt8 = 0
        switch withUnsafeMutableBytes(of: &byte, { system_recv(fd, $0) }) {
        case .success(0): return .endOfFile
        case .success(let count): return .data(count)
        case .failure(.connectionReset): return .reset
        case .failure(.resourceTemporarilyUnavailable): return .timedOut
        case .failure(let errno): return .failed(errno)
        }
    }

    /// Whether the server closed: the next `recv` reports end of input
    /// (rather than data, a reset, or a time-out).
    public func receivesEndOfInput() -> Bool {
        var byte: UInt8 = 0
        let result = withUnsafeMutableBytes(of: &byte) { system_recv(fd, $0) }
        return (try? result.get()) == 0
    }

    /// Shuts the sending side: the server sees end of input.
    public func shutdownWrite() throws {
        try system_shutdown(fd, CInt(SHUT_WR)).mapError { StepError("shutdown", $0) }.get()
    }
}

/// A count shared between threads.
public final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    /// A count at zero.
    public init() {}
    /// Adds `amount`.
    public func add(_ amount: Int) { value.add(amount, ordering: .relaxed) }
    /// The count now.
    public var current: Int { value.load(ordering: .relaxed) }
}

/// A long stream made of one 64 KiB block repeated: every byte value occurs
/// in the block, lower-case letters in runs and scattered, so the echo of the
/// stream can be checked chunk by chunk without keeping it all.
public struct PatternStream: Sendable {
    /// The size of the repeated block.
    public static let blockSize = 64 * 1024
    /// The block, as sent.
    public let block: [UInt8]
    /// The block, as the server must send it back.
    public let expected: [UInt8]

    /// The block made from `seed`, with every byte value in it.
    public init(seed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        var state = seed
        var block = [UInt8](repeating: 0, count: Self.blockSize)
        for index in block.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            // Half the bytes in a-z, so that most words need the transform.
            let random = UInt8(truncatingIfNeeded: state >> 33)
            block[index] = index % 2 == 0 ? 0x61 + random % 26 : random
        }
        for value in 0...255 { block[value] = UInt8(value) }
        self.block = block
        self.expected = pythonUpper(block)
    }

    /// Sends `blocks` blocks on `client`, adding to `sent` as it goes.
    public func send(blocks: Int, on client: TestClient, sent: Counter? = nil) throws {
        try block.withUnsafeBytes { raw in
            for _ in 0..<blocks {
                try client.send(raw)
                sent?.add(raw.count)
            }
        }
    }

    /// Receives `count` bytes on `client` and checks each against the
    /// upper-cased stream; throws at the first difference or short read.
    public func receiveAndVerify(count: Int, on client: TestClient) throws {
        var position = 0
        var chunk = [UInt8](repeating: 0, count: 65536)
        while position < count {
            let wanted = min(chunk.count, count - position)
            let received = try chunk.withUnsafeMutableBytes {
                try client.receiveSome(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<wanted]))
            }
            guard received > 0 else { throw StepError("end of input after \(position) of \(count) bytes") }
            try chunk.withUnsafeBytes { try check(UnsafeRawBufferPointer(rebasing: $0[..<received]), at: position) }
            position += received
        }
    }

    /// Compares `bytes` with the expected stream from `position` on.
    private func check(_ bytes: UnsafeRawBufferPointer, at position: Int) throws {
        var done = 0
        try expected.withUnsafeBytes { expected in
            while done < bytes.count {
                let offset = (position + done) % Self.blockSize
                let length = min(bytes.count - done, Self.blockSize - offset)
                if memcmp(bytes.baseAddress! + done, expected.baseAddress! + offset, length) != 0 {
                    throw StepError(
                        "wrong bytes in the echo between \(position + done) and \(position + done + length)")
                }
                done += length
            }
        }
    }
}
