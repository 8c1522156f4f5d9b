import CEpollShim
import Foundation
import Syscalls
import TestSupport
import Testing
import UpperEcho

@testable import Reactor

@Suite("Backpressure and resets", .timeLimit(.minutes(1)))
struct FlowControlTests {
    /// A client sends 64 MiB and reads nothing until its sends have stalled
    /// for a second. The server must stop reading once its queue for the
    /// client passes the high-water mark, so the client's sends block and the
    /// queue stays under the mark plus one read; then the client reads
    /// everything back.
    @Test("a client that does not read its replies cannot make the server buffer without bound")
    func slowReaderIsBounded() throws {
        let server = try ServerHarness()
        defer { try? server.shutdown() }
        let options = TCPConnection.Options()
        let bound = options.highWaterMark + 64 * 1024  // the mark plus one read buffer
        let total = 64 * 1024 * 1024
        let client = try TestClient(port: server.port, timeout: .seconds(40))
        let stream = PatternStream()
        let sent = Counter()
        let writer = Background { try stream.send(blocks: total / PatternStream.blockSize, on: client, sent: sent) }
        // Wait for the server to queue up to its mark and the client's sends
        // to stop for 1 s, however long that takes here; a server that kept
        // reading lets the sends run to the end instead, which the checks
        // below catch.
        var lastSent = -1
        var lastProgress = now()
        let settled = try waitUntil(timeout: .seconds(60)) {
            let current = sent.current
            if current != lastSent {
                lastSent = current
                lastProgress = now()
            }
            if current == total { return true }
            guard now() - lastProgress >= .seconds(1) else { return false }
            return try server.stats().peakQueued >= options.highWaterMark
        }
        #expect(settled, "within 60 s the client's sends neither stalled with the server's queue at its mark nor ended")
        let whileStalled = try server.stats()
        let sentWhileStalled = sent.current
        #expect(whileStalled.peakQueued >= options.highWaterMark, "the server never queued up to its high-water mark")
        #expect(whileStalled.peakQueued < bound)
        #expect(whileStalled.bytesIn < 32 * 1024 * 1024, "the server kept reading from a client that does not read")
        #expect(sentWhileStalled < total, "the client's sends never blocked")
        try stream.receiveAndVerify(count: total, on: client)
        try writer.join()
        let final = try server.stats()
        #expect(final.peakQueued < bound)
        #expect(final.bytesOut == total)
        #expect(final.resets == 0)
    }

    /// A client that has made the server queue replies resets the connection
    /// (SO_LINGER 0). The server closes that connection, releases its
    /// descriptor and its registration, and goes on serving the others.
    @Test("a reset in the middle of a reply closes that connection only and leaks nothing")
    func resetMidReplyLeaksNothing() throws {
        let server = try ServerHarness()
        defer { try? server.shutdown() }
        let bystander = try TestClient(port: server.port)
        #expect(try bystander.echo("hello") == "HELLO")
        let resetter = try TestClient(port: server.port, receiveBuffer: 4096)
        #expect(try server.waitForStats { $0.open == 2 }.open == 2)
        let serverSide = try #require(
            serverSocketInode(serverPort: server.port, clientPort: resetter.localPort),
            "the server's socket for the client is not in /proc/net/tcp")
        #expect(openSocketInodes().contains(serverSide))
        try fillServerQueue(of: resetter, server: server)
        try resetter.closeWithReset()
        let stats = try server.waitForStats { $0.resets == 1 && $0.open == 1 }
        #expect(stats.resets == 1)
        #expect(stats.open == 1)
        #expect(try server.sourceCount() == server.baselineSources + 1)
        #expect(!openSocketInodes().contains(serverSide), "the server kept the reset connection's descriptor")
        #expect(try bystander.echo("still served") == "STILL SERVED")
        bystander.close()
        #expect(try server.waitForStats { $0.open == 0 }.open == 0)
        #expect(try server.sourceCount() == server.baselineSources)
    }

    /// Sends lower-case bytes without waiting until the kernel refuses more
    /// and the server has queued replies it cannot deliver.
    private func fillServerQueue(of client: TestClient, server: ServerHarness) throws {
        let chunk = [UInt8](repeating: UInt8(ascii: "r"), count: 16 * 1024)
        let deadline = now() + .seconds(30)
        while now() < deadline {
            let result = chunk.withUnsafeBytes { system_send(client.fd, $0, CInt(MSG_DONTWAIT)) }
            switch result {
            case .success: continue
            case .failure(let errno) where errno == .resourceTemporarilyUnavailable:
                if try server.stats().peakQueued > 0 { return }
                Thread.sleep(forTimeInterval: 0.01)
            case .failure(let errno): throw StepError("send", errno)
            }
        }
        throw StepError("the server never queued replies for the client")
    }
}

/// The inode of the server's socket connected to `clientPort`, from the
/// kernel's table of TCP sockets: what the server's descriptor links to in
/// /proc/self/fd. Robust against other tests opening descriptors meanwhile.
func serverSocketInode(serverPort: UInt16, clientPort: UInt16) -> String? {
    guard let table = readProcFile("/proc/net/tcp") else { return nil }
    func hex(_ port: UInt16) -> String {
        let digits = String(port, radix: 16, uppercase: true)
        return "0100007F:" + String(repeating: "0", count: 4 - digits.count) + digits
    }
    for line in table.split(separator: "\n").dropFirst() {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        if fields.count > 9, fields[1] == hex(serverPort), fields[2] == hex(clientPort) { return String(fields[9]) }
    }
    return nil
}

/// The whole of a /proc file, which reports a size of 0 and must be read to its end.
func readProcFile(_ path: String) -> String? {
    guard case .success(let fd) = system_open(path, O_RDONLY | O_CLOEXEC) else { return nil }
    defer { _ = system_close(fd) }
    var contents: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while case .success(let count) = chunk.withUnsafeMutableBytes({ system_read(fd, $0) }), count > 0 {
        contents += chunk[..<count]
    }
    return String(decoding: contents, as: UTF8.self)
}

/// The inodes of the sockets this process holds descriptors for.
func openSocketInodes() -> Set<String> {
    let manager = FileManager.default
    guard let entries = try? manager.contentsOfDirectory(atPath: "/proc/self/fd") else { return [] }
    var inodes: Set<String> = []
    for entry in entries {
        guard let target = try? manager.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)"),
            target.hasPrefix("socket:[")
        else { continue }
        inodes.insert(String(target.dropFirst("socket:[".count).dropLast()))
    }
    return inodes
}
