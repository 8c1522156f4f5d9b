import Foundation
import Syscalls
import SystemPackage
import TestSupport

/// A plain blocking TCP client. Every `recv` and `send` gives up after
/// `timeout` (`SO_RCVTIMEO`, `SO_SNDTIMEO`), so a broken server makes a test
/// fail instead of hang.
final class TestClient: ClientSocket {
    /// Connects to `127.0.0.1:port`. A small `receiveBuffer` (`SO_RCVBUF`,
    /// set before connecting so the window is small from the start) makes the
    /// server's socket buffer fill up sooner.
    init(port: UInt16, timeout: Duration = .seconds(30), receiveBuffer: CInt? = nil) throws {
        super.init(fd: try openClientSocket(port: port, timeout: timeout, receiveBuffer: receiveBuffer))
    }

    /// Sends all of `bytes`, however many `send` calls it takes.
    func send(_ bytes: some Collection<UInt8>) throws {
        try sendAll(Array(bytes), to: fd)
    }

    /// Receives until `count` bytes have arrived, the server closes, or a
    /// `recv` times out; returns what arrived, which a test compares.
    func receive(count: Int) -> [UInt8] {
        receiveBytes(from: fd, count: count)
    }

    /// Receives `text.utf8.count` bytes and decodes them.
    func receiveText(_ expected: String) -> String {
        String(decoding: receive(count: expected.utf8.count), as: UTF8.self)
    }
}
