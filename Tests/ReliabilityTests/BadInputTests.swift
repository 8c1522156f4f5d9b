import Foundation
import Synchronization
import Syscalls
import TestSupport
import Testing

extension ReliabilityTests {
    /// Scenario 7. One server takes, in turn: random binary payloads (every
    /// byte value) in random-sized writes; 10,000 one-byte writes; 64 MiB in
    /// one `send` call; 100 connections closed without sending a byte; a
    /// client that half-closes (`shutdown(SHUT_WR)`) and then reads
    /// everything. Every reply byte must be `bytes.upper()` of the byte sent,
    /// the server must survive, and hold no more descriptors than at start.
    @Test(arguments: ServerLayout.everyAPI)
    func badInputEveryByteRightAndNoCrash(layout: ServerLayout) throws {
        let randomSize = Soak.pick(short: 1, soak: 16) << 20
        let singleBytes = Soak.pick(short: 10_000, soak: 100_000)
        let oneWrite = 64 << 20
        let emptyConnections = Soak.pick(short: 100, soak: 1000)
        let halfCloseSize = Soak.pick(short: 1, soak: 16) << 20
        let server = try ServerProcess.upperEcho(layout.arguments)
        defer { server.stop() }
        let baselineDescriptors = server.openDescriptorCount()
        let port = server.port

        // Random binary, every one of the 256 values, in writes of 1 byte to 64 KiB.
        var generator = SystemRandomNumberGenerator()
        var randomBytes = (0..<randomSize).map { _ in UInt8.random(in: 0...255, using: &generator) }
        randomBytes.replaceSubrange(0..<256, with: (0...255).map { UInt8($0) })
        let random = randomBytes
        #expect(Set(random).count == 256)
        let randomResult = try Self.exchange(port: port) { client in
            var offset = 0
            var generator = SystemRandomNumberGenerator()
            while offset < random.count {
                let length = min(Int.random(in: 1...65536, using: &generator), random.count - offset)
                try random.withUnsafeBytes {
                    try client.send(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + length]))
                }
                offset += length
            }
        } receive: {
            $0.verify(count: random.count, sent: random)
        }
        #expect(randomResult.verification.isExact(random.count), "random: \(randomResult.verification)")

        // One-byte writes, each its own segment (TCP_NODELAY).
        let singleResult = try Self.exchange(port: port) { client in
            client.setNoDelay()
            for offset in 0..<singleBytes {
                var byte = StreamPattern.byte(1, offset)
                let sent = withUnsafeBytes(of: &byte) { client.sendOnce($0) }
                guard case .success(1) = sent else { throw SpawnError(description: "send \(offset): \(sent)") }
            }
        } receive: {
            $0.verify(count: singleBytes, stream: 1)
        }
        #expect(singleResult.verification.isExact(singleBytes), "1-byte writes: \(singleResult.verification)")

        // 64 MiB in one send() call on a blocking socket; another thread reads.
        let big = [UInt8](unsafeUninitializedCapacity: oneWrite) { buffer, initialized in
            for offset in stride(from: 0, to: oneWrite, by: 65536) {
                let chunk = UnsafeMutableRawBufferPointer(
                    rebasing: UnsafeMutableRawBufferPointer(buffer)[offset..<offset + 65536])
                StreamPattern.fill(chunk, stream: 2, offset: offset)
            }
            initialized = oneWrite
        }
        let oneWriteReturned = Atomic<Int>(-1)
        let bigResult = try Self.exchange(port: port, timeout: .seconds(120)) { client in
            let result = big.withUnsafeBytes { client.sendOnce($0) }
            if case .success(let count) = result { oneWriteReturned.store(count, ordering: .relaxed) }
        } receive: {
            $0.verify(count: oneWrite, stream: 2)
        }
        #expect(oneWriteReturned.load(ordering: .relaxed) == oneWrite, "the one send() returned short")
        #expect(bigResult.verification.isExact(oneWrite), "64 MiB: \(bigResult.verification)")

        // Connect and close without sending.
        for _ in 0..<emptyConnections { try Client(port: port).close() }

        // Half-close: send, shutdown(SHUT_WR), read everything, then end of file.
        let halfResult = try Self.exchange(port: port) { client in
            try client.sendStream(3, count: halfCloseSize)
            try? client.shutdownWrite()
        } receive: { client in
            var result = client.verify(count: halfCloseSize, stream: 3)
            if result.isExact(halfCloseSize), client.streamEnding() != .endOfFile { result.ending = .timedOut }
            return result
        }
        #expect(halfResult.verification.isExact(halfCloseSize), "half-close: \(halfResult.verification)")

        let descriptors = server.waitForDescriptorCount(baselineDescriptors)
        #expect(descriptors == baselineDescriptors, "the server holds \(descriptors), \(baselineDescriptors) at start")
        #expect(server.isRunning, "upper-echo died: \(server.child.errors.text.suffix(500))")
        let stats = try #require(server.stats())
        let total = random.count + singleBytes + oneWrite + halfCloseSize
        #expect(stats["bytes_in"] == total && stats["bytes_out"] == total, "\(stats)")
        #expect(stats["accepted"] == 4 + emptyConnections && stats["open"] == 0, "\(stats)")
        figure(
            "bad-input (\(layout))",
            "random=\(randomSize >> 10)KiB(256 values) ok in \(Int(seconds(randomResult.took) * 1000))ms;"
                + " 1-byte_writes=\(singleBytes) ok in \(Int(seconds(singleResult.took) * 1000))ms;"
                + " one_send=64MiB returned \(oneWriteReturned.load(ordering: .relaxed)) ok in"
                + " \(Int(seconds(bigResult.took) * 1000))ms; empty_connections=\(emptyConnections);"
                + " half_close=\(halfCloseSize >> 10)KiB+EOF ok; bytes_in=\(stats["bytes_in"] ?? -1)"
                + " descriptors baseline=\(baselineDescriptors) after=\(descriptors) server_alive=\(server.isRunning)"
        )
    }

    /// Connects, runs `send` on one thread and `receive` on another, and
    /// returns what `receive` saw and how long the exchange took.
    static func exchange(
        port: UInt16, timeout: Duration = .seconds(60),
        send: @escaping @Sendable (Client) throws -> Void,
        receive: @escaping @Sendable (Client) -> Verification
    ) throws -> (verification: Verification, took: Duration) {
        let client = try Client(port: port, timeout: timeout)
        defer { client.close() }
        let verification = Lock<Verification?>(nil)
        let sendError = Lock<String?>(nil)
        let start = ContinuousClock.now
        let finished = runThreads(2, timeout: timeout + .seconds(5)) { thread in
            if thread == 0 {
                do { try send(client) } catch { sendError.withLock { $0 = "\(error)" } }
            } else {
                let result = receive(client)
                verification.withLock { $0 = result }
            }
        }
        guard finished, let result = verification.withLock({ $0 }) else {
            throw SpawnError(description: "the exchange did not finish in time")
        }
        if let error = sendError.withLock({ $0 }) { throw SpawnError(description: "send: \(error)") }
        return (result, ContinuousClock.now - start)
    }
}
