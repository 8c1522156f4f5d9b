import Foundation
import Syscalls
import SystemPackage
import TestSupport

/// How a connection looked from the client after a `recv`.
enum Ending: Equatable, CustomStringConvertible {
    /// The server closed gracefully (`recv` returned 0).
    case endOfFile
    /// The server reset the connection (`ECONNRESET`).
    case reset
    /// Nothing came before the receive timeout.
    case timedOut
    /// Bytes came: the connection is alive.
    case data(Int)
    /// Another errno.
    case failed(Errno)

    var description: String {
        switch self {
        case .endOfFile: "end of file"
        case .reset: "reset"
        case .timedOut: "timed out"
        case .data(let count): "\(count) bytes"
        case .failed(let errno): "\(errno)"
        }
    }

    /// Whether the server closed the connection, gracefully or not.
    var isClosed: Bool { self == .endOfFile || self == .reset }
}

/// Python's `bytes.upper()` of one byte, written independently of the
/// server's version: the byte values 97...122 lose 32, every other byte stays.
func pythonUpper(_ byte: UInt8) -> UInt8 {
    97 <= byte && byte <= 122 ? byte - 32 : byte
}

/// Python's `bytes.upper()`.
func pythonUpper(_ bytes: [UInt8]) -> [UInt8] {
    bytes.map(pythonUpper)
}

/// A plain blocking TCP client. Every `recv` and `send` gives up after
/// `timeout` (`SO_RCVTIMEO`, `SO_SNDTIMEO`), so a broken server makes a test
/// fail instead of hang.
final class TestClient: ClientSocket {
    /// Connects to `host:port` (a numeric address, 127.0.0.1 unless told).
    init(port: UInt16, host: String = "127.0.0.1", timeout: Duration = .seconds(30)) throws {
        super.init(fd: try openClientSocket(port: port, host: host, timeout: timeout))
    }

    /// Sets how long a `recv` or a `send` may block.
    func setTimeout(_ timeout: Duration) throws {
        try setClientTimeout(fd, timeout)
    }

    /// Sends all of `bytes`, however many `send` calls it takes.
    func send(_ bytes: some Collection<UInt8>) throws {
        try sendAll(Array(bytes), to: fd)
    }

    /// Sends `text` as UTF-8.
    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Sends `byte(offset)` for offset 0, 1, ... without blocking and without
    /// reading, until nothing more has gone in for `stall`: every buffer
    /// between here and the server is full and the server has stopped
    /// reading. Returns how many bytes were sent.
    func sendUntilStalled(stall: Duration = .milliseconds(200), _ byte: (Int) -> UInt8) -> Int {
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

    /// Receives until `count` bytes have arrived, the server closes, or a
    /// `recv` times out; returns what arrived, which a test compares.
    func receive(count: Int) -> [UInt8] {
        receiveBytes(from: fd, count: count)
    }

    /// Receives as many bytes as `text` has and decodes them.
    func receiveText(_ text: String) -> String {
        String(decoding: receive(count: text.utf8.count), as: UTF8.self)
    }

    /// Sends `text` and returns whether `text.uppercased()` came back (ASCII only).
    func roundTrip(_ text: String) -> Bool {
        guard (try? send(text)) != nil else { return false }
        return receiveText(text) == text.uppercased()
    }

    /// Receives until the server closes or a `recv` times out, handing each
    /// chunk to `inspect` with its offset in the stream; returns how it ended.
    func receiveUntilEnd(_ inspect: (_ offset: Int, _ bytes: ArraySlice<UInt8>) -> Void) -> Ending {
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
    func ending() -> Ending {
        var byte: UInt8 = 0
        switch withUnsafeMutableBytes(of: &byte, { system_recv(fd, $0) }) {
        case .success(0): return .endOfFile
        case .success(let count): return .data(count)
        case .failure(.connectionReset): return .reset
        case .failure(.resourceTemporarilyUnavailable): return .timedOut
        case .failure(let errno): return .failed(errno)
        }
    }
}
