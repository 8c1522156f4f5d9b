import Foundation
import Synchronization
import Syscalls
import TestSupport
import Testing

extension ReliabilityTests {
    /// Scenario 4. 1,000 clients each send a request without reading, wait
    /// for the first kilobyte of the reply (the server is now replying),
    /// check it, and reset the connection (`SO_LINGER` 0, then `close`) with
    /// the rest of the reply still on its way. Their receive buffers are
    /// pinned small (`SO_RCVBUF` 8 KiB) so that the rest is stuck on the
    /// server's side when the reset comes. The server must not crash, not die
    /// of SIGPIPE (it writes into reset connections), not leak a descriptor,
    /// and still exit 0 on SIGTERM. Soak: 10 rounds of 1,000.
    ///
    /// Most clients send 256 KiB, which the kernel takes whole on loopback
    /// (the server's send buffer grows to 4 MiB): the reply is cut in the
    /// kernel. Every 50th client sends first, alone, until a blocking send
    /// makes no progress for 1 s (about 8 MiB): the server has then queued
    /// replies past its high water mark and stopped reading it, and the
    /// reset finds it waiting to write. A server merely slow to read (under
    /// a sanitizer, beside other suites) also stalls a send for 1 s, so they
    /// send again, from where they stopped, until the server reports a queue
    /// of 64 KiB.
    @Test(arguments: ServerLayout.everyAPI)
    func resetsInTheMiddleOfAReplyLeakNothing(layout: ServerLayout) throws {
        let clients = 1000
        let rounds = Soak.pick(short: 1, soak: 10)
        let request = 256 * 1024
        let threads = 4
        let server = try ServerProcess.upperEcho(layout.arguments + ["--backlog", "1024"])
        defer { server.stop() }
        let baselineDescriptors = server.openDescriptorCount()
        let port = server.port
        let counts = ResetCounts()
        var resetsSent = Duration.zero
        var drained = Duration.zero
        var descriptors = -1
        for round in 0..<rounds {
            let connections = try (0..<clients).map { _ in
                try Client(port: port, receiveBuffer: 8 * 1024)
            }
            let flooders = Array(stride(from: 0, to: clients, by: 50))
            let flooded = Lock([Int](repeating: 0, count: flooders.count))
            let floodingEnds = ContinuousClock.now + .seconds(120)
            var queued = false
            while !queued && ContinuousClock.now < floodingEnds {
                let stalled = runThreads(flooders.count, timeout: .seconds(120)) { slot in
                    let index = flooders[slot]
                    let offset = flooded.withLock { $0[slot] }
                    let sent = Self.sendUntilStalled(connections[index], stream: index, from: offset)
                    flooded.withLock { $0[slot] += sent }
                    counts.sent.add(sent, ordering: .relaxed)
                }
                try #require(stalled, "round \(round): the flooding clients did not stall within 120 s")
                queued = server.stats()?["peak_queued"] ?? 0 >= 64 * 1024
            }
            try #require(queued, "round \(round): within 120 s of flooding the server never queued 64 KiB of replies")

            let start = ContinuousClock.now
            let finished = runThreads(threads, timeout: .seconds(120)) { thread in
                let mine = stride(from: thread, to: clients, by: threads).map { $0 }
                let senders = mine.filter { $0 % 50 != 0 }.map { ($0, connections[$0]) }
                let sent = Self.sendWithoutReading(request, to: senders)
                counts.sent.add(sent.reduce(0, +), ordering: .relaxed)
                counts.fullySent.add(sent.count { $0 == request }, ordering: .relaxed)
                for index in mine {
                    // The reply has started: its first kilobyte is here, and right.
                    let first = connections[index].verify(count: 1024, stream: index)
                    if first.isExact(1024) {
                        counts.replyStarted.add(1, ordering: .relaxed)
                    } else {
                        counts.problems.withLock { $0.append("client \(index): \(first)") }
                    }
                    connections[index].reset()
                }
            }
            try #require(finished, "round \(round): the clients did not finish within 120 s")
            let sentAt = ContinuousClock.now
            resetsSent = max(resetsSent, sentAt - start)
            descriptors = server.waitForDescriptorCount(baselineDescriptors, timeout: .seconds(60))
            drained = max(drained, ContinuousClock.now - sentAt)
            try #require(descriptors == baselineDescriptors, "round \(round): \(descriptors) descriptors")
        }

        #expect(counts.problems.withLock { $0 }.isEmpty, "\(counts.problems.withLock { $0.prefix(3) })")
        #expect(
            server.isRunning, "upper-echo died: \(server.child.termination); \(server.child.errors.text.suffix(500))")
        let stats = try #require(server.stats())
        let total = rounds * clients
        #expect(stats["accepted"] == total && stats["open"] == 0 && stats["closed"] == total, "\(stats)")
        // Every connection ended in a reset. One whose replies the kernel had
        // all taken when the reset came owed nothing: counted apart, as a
        // balancer's probe is (`probe_resets`).
        #expect(
            (stats["resets"] ?? 0) + (stats["probe_resets"] ?? 0) == total,
            "every connection ended in a reset: \(stats)")
        let after = try Client(port: port)
        #expect(after.roundTrip("still serving after 1,000 resets"))
        after.close()

        server.child.send(SIGTERM)
        #expect(server.child.waitForExit(timeout: .seconds(60)), "still running 60 s after SIGTERM")
        #expect(server.child.exited(with: 0), "upper-echo: \(server.child.exitReport)")
        figure(
            "resets (\(layout))",
            "clients=\(rounds)x\(clients) sent=\(counts.sent.load(ordering: .relaxed) >> 20)MiB"
                + " (\(counts.fullySent.load(ordering: .relaxed)) x 256 KiB, \(rounds * 20) flooders until stalled)"
                + " reply_started=\(counts.replyStarted.load(ordering: .relaxed))"
                + " resets_sent_in=\(fixed(seconds(resetsSent), 2))s server_resets=\(stats["resets"] ?? -1)"
                + " peak_queued=\(stats["peak_queued"] ?? -1) descriptors baseline=\(baselineDescriptors)"
                + " after=\(descriptors) (back in \(Int(seconds(drained) * 1000)) ms)"
                + " sigterm=\(server.child.termination)"
        )
    }

    /// Sends stream `stream` from `offset` on with blocking 64 KiB sends
    /// until one makes no progress for 1 s (at most 64 MiB in all); returns
    /// the bytes sent.
    static func sendUntilStalled(_ client: Client, stream: Int, from offset: Int = 0) -> Int {
        var sent = 0
        var chunk = [UInt8](repeating: 0, count: 65536)
        try? client.setTimeout(.seconds(1))
        defer { try? client.setTimeout(.seconds(30)) }
        while offset + sent < 64 << 20 {
            let result = chunk.withUnsafeMutableBytes { bytes in
                StreamPattern.fill(bytes, stream: stream, offset: offset + sent)
                return client.sendOnce(UnsafeRawBufferPointer(bytes))
            }
            guard case .success(let count) = result, count > 0 else { break }
            sent += count
        }
        return sent
    }

    /// Sends `count` bytes of each client's stream (stream `index`) without
    /// blocking and without reading, round-robin, until each has sent them
    /// all or none made progress for 500 ms; returns how many each sent.
    static func sendWithoutReading(_ count: Int, to clients: [(index: Int, client: Client)]) -> [Int] {
        var sent = [Int](repeating: 0, count: clients.count)
        var chunk = [UInt8](repeating: 0, count: 65536)
        var lastProgress = ContinuousClock.now
        while ContinuousClock.now - lastProgress < .milliseconds(500), sent.contains(where: { $0 < count }) {
            var progressed = false
            for (slot, (index, client)) in clients.enumerated() where sent[slot] < count {
                let length = min(chunk.count, count - sent[slot])
                let result = chunk.withUnsafeMutableBytes { bytes in
                    let part = UnsafeMutableRawBufferPointer(rebasing: bytes[..<length])
                    StreamPattern.fill(part, stream: index, offset: sent[slot])
                    return client.sendOnce(UnsafeRawBufferPointer(part), flags: CInt(MSG_DONTWAIT))
                }
                if case .success(let n) = result, n > 0 {
                    sent[slot] += n
                    progressed = true
                }
            }
            if progressed { lastProgress = ContinuousClock.now } else { Thread.sleep(forTimeInterval: 0.005) }
        }
        return sent
    }
}

/// What the reset scenario's client threads counted.
final class ResetCounts: Sendable {
    let sent = Atomic<Int>(0)
    let fullySent = Atomic<Int>(0)
    let replyStarted = Atomic<Int>(0)
    let problems = Lock<[String]>([])
}
