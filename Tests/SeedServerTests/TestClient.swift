import Foundation
import Syscalls
import SystemPackage
import TestSupport

/// A plain blocking TCP client. Every `recv` and `send` gives up after
/// `timeout` (`SO_RCVTIMEO`, `SO_SNDTIMEO`), so a broken server makes a test
/// fail instead of hang.
final class TestClient {
    private(set) var fd: CInt

    /// Connects to `127.0.0.1:port`. A small `receiveBuffer` (`SO_RCVBUF`,
    /// set before connecting so the window is small from the start) makes the
    /// server's socket buffer fill up sooner.
    init(port: UInt16, timeout: Duration = .seconds(5), receiveBuffer: CInt? = nil) throws {
        fd = try openClientSocket(port: port, timeout: timeout, receiveBuffer: receiveBuffer)
    }

    deinit { close() }

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

    /// Sets `SO_LINGER` to 0 so that `close` resets the connection (RST)
    /// instead of closing it gracefully (FIN).
    func closeWithReset() throws {
        try system_setsockopt_linger(fd, on: true, seconds: 0).mapError { ClientError("SO_LINGER", $0) }.get()
        close()
    }

    /// Closes the socket; later calls do nothing.
    func close() {
        guard fd >= 0 else { return }
        _ = system_close(fd)
        fd = -1
    }
}
