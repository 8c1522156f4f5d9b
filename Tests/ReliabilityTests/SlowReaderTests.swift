import Foundation
import Synchronization
import Syscalls
import TestSupport
import Testing

extension ReliabilityTests {
    /// Scenario 3. 100 clients each send as fast as the server takes their
    /// bytes (64 KiB blocking sends) and read their replies slowly (1 KiB
    /// every 20 ms), until they are held back: their sender has made no
    /// progress for 1 s, so every buffer between them and the server is full
    /// and the server has stopped reading them. Then each sender stops (the
    /// soak form once it has sent 16 MiB), sends end of input, and its reader reads the rest as fast as it can.
    ///
    /// The server must stop reading from a client whose replies pile up
    /// (high water mark 64 KiB), so its memory stays bounded:
    ///
    ///     peak RSS (VmHWM) <= baseline + clients x (64 KiB high water mark + 64 KiB read buffer)
    ///
    /// where baseline is VmRSS after start plus 4 MiB of slack (connection
    /// objects, the allocator's own bookkeeping). A connection queues at most
    /// one read (64 KiB) beyond the high water mark before it stops reading.
    /// Every reply byte is checked; each reply ends with end of file after
    /// exactly the bytes its client sent.
    ///
    /// The condition is driven, not hoped for: a sender keeps sending until
    /// its client is held back, however much that takes (on loopback the
    /// server's kernel send buffer alone grows to `tcp_wmem`'s 4 MiB), and no
    /// reader speeds up before the server has reported (SIGHUP) a queue at
    /// the high water mark. If that does not happen within the deadline, the
    /// test fails saying so.
    @Test(arguments: ServerLayout.everyAPI)
    func slowReadersStayWithinTheMemoryBound(layout: ServerLayout) throws {
        let clients = 100
        let highWaterMark = 64 * 1024
        // The soak form sends at least 16 MiB per client, held back or not.
        let minimum = Soak.pick(short: 0, soak: 16) << 20
        let slowPhaseLimit = Duration.seconds(Soak.pick(short: 300, soak: 600))
        let slackKilobytes = 4 * 1024
        let perClientKilobytes = 64 + 64
        let server = try ServerProcess.upperEcho(layout.arguments)
        defer { server.stop() }
        let baselineKilobytes = try #require(server.residentKilobytes())
        let boundKilobytes = baselineKilobytes + slackKilobytes + clients * perClientKilobytes
        let port = server.port

        let connections = try (0..<clients).map { _ in
            try Client(
                port: port, timeout: slowPhaseLimit + .seconds(60), receiveBuffer: 32 * 1024, sendBuffer: 64 * 1024)
        }
        let senders = (0..<clients).map { _ in SenderProgress() }
        let results = Lock<[Int: Verification]>([:])
        let sendErrors = Lock<[String]>([])
        let heldBack = Atomic<Int>(0)
        let queueReached = Atomic<Bool>(false)
        let readersDone = Atomic<Int>(0)
        let monitored = Monitored(server)
        let start = ContinuousClock.now
        let slowPhaseEnd = start + slowPhaseLimit
        let finished = runThreads(2 * clients + 1, timeout: .seconds(Soak.pick(short: 600, soak: 1200))) { thread in
            if thread == 2 * clients {
                // The monitor: until the server reports a queue at the high
                // water mark, no reader leaves its slow phase.
                while !queueReached.load(ordering: .acquiring) && ContinuousClock.now < slowPhaseEnd
                    && readersDone.load(ordering: .relaxed) < clients
                {
                    if let queued = monitored.server.stats()?["peak_queued"], queued >= highWaterMark {
                        queueReached.store(true, ordering: .releasing)
                    } else {
                        Thread.sleep(forTimeInterval: 0.1)
                    }
                }
                return
            }
            let index = thread / 2
            let client = connections[index]
            let sender = senders[index]
            if thread % 2 == 0 {
                var sent = 0
                do {
                    while !sender.isStopRequested || sent < minimum {
                        try client.sendStream(index, from: sent, count: 65536)
                        sent += 65536
                        sender.advance(to: sent)
                    }
                } catch {
                    sendErrors.withLock { $0.append("client \(index): \(error)") }
                }
                // Before the end of input, so that the reader knows the total
                // by the time the server's end of file reaches it.
                sender.finish(total: sent)
                try? client.shutdownWrite()
            } else {
                var slow = true
                var result = client.verify(count: .max, stream: index) { _ in
                    if slow && sender.idle > .seconds(1) && queueReached.load(ordering: .acquiring) {
                        slow = false
                        heldBack.add(1, ordering: .relaxed)
                    } else if slow && ContinuousClock.now >= slowPhaseEnd {
                        slow = false  // not held back in time: the assertions below say so
                    }
                    if !slow { sender.requestStop() }
                    return slow ? (1024, .milliseconds(20)) : (65536, .zero)
                }
                // The server closes once every reply is delivered.
                if result.ending == .endOfFile && result.received == sender.total { result.ending = .complete }
                results.withLock { $0[index] = result }
                readersDone.add(1, ordering: .relaxed)
            }
        }
        let elapsed = ContinuousClock.now - start
        try #require(finished, "the clients did not finish in time")
        let reached = queueReached.load(ordering: .acquiring)
        try #require(
            reached,
            "the server never reported a queue of \(highWaterMark) bytes within \(slowPhaseLimit): nothing was tested")
        let peakKilobytes = try #require(server.peakResidentKilobytes())
        let stats = try #require(server.stats())
        let totals = senders.map(\.total)

        #expect(sendErrors.withLock { $0 }.isEmpty, "\(sendErrors.withLock { $0.prefix(3) })")
        let wrong = results.withLock { $0 }.filter { !$0.value.isExact(totals[$0.key]) }
        #expect(results.withLock { $0.count } == clients)
        #expect(
            wrong.isEmpty, "\(wrong.count) clients wrong, e.g. \(wrong.first.map { "\($0.key): \($0.value)" } ?? "")")
        #expect(
            peakKilobytes <= boundKilobytes || Sanitizer.isActive,
            "peak RSS \(peakKilobytes) KiB above the bound \(boundKilobytes) KiB")
        // A connection queues at most one read beyond the high water mark.
        let peakQueued = stats["peak_queued"] ?? 0
        #expect(peakQueued >= highWaterMark && peakQueued <= 2 * highWaterMark, "peak_queued \(peakQueued)")
        #expect(
            heldBack.load(ordering: .relaxed) == clients,
            "only \(heldBack.load(ordering: .relaxed)) of \(clients) clients were held back within \(slowPhaseLimit)")
        let total = totals.reduce(0, +)
        #expect(stats["bytes_in"] == total && stats["bytes_out"] == total, "sent \(total): \(stats)")
        #expect(server.isRunning, "upper-echo died: \(server.child.errors.text.suffix(500))")
        figure(
            "slow-readers (\(layout))",
            "clients=\(clients) each=\(fixed(Double(total) / Double(clients) / 1_048_576, 1))MiB"
                + " verified=\(clients - wrong.count)/\(clients)"
                + " held_back=\(heldBack.load(ordering: .relaxed))/\(clients) in \(fixed(seconds(elapsed), 1))s"
                + " peak_rss_kb=\(peakKilobytes) bound_kb=\(boundKilobytes)"
                + " (baseline \(baselineKilobytes) + slack \(slackKilobytes) + \(clients) x \(perClientKilobytes))"
                + " peak_queued=\(peakQueued)\(Sanitizer.isActive ? " (sanitizer build: bound not asserted)" : "")"
        )
    }
}

/// The server, handed to the monitor thread, which only calls `stats()`: a
/// SIGHUP and a read of the collected output, which is behind a lock.
private final class Monitored: @unchecked Sendable {
    let server: ServerProcess
    init(_ server: ServerProcess) { self.server = server }
}

/// How far a sender got, for its reader: the reader reads slowly until the
/// sender stalls, then tells the sender to stop.
final class SenderProgress: Sendable {
    private let lastProgress = Atomic<Int64>(SenderProgress.now())
    private let finished = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)
    private let sentTotal = Atomic<Int>(0)

    private static let epoch = ContinuousClock.now

    private static func now() -> Int64 {
        let elapsed = ContinuousClock.now - epoch
        return elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
    }

    /// The sender sent more.
    func advance(to _: Int) { lastProgress.store(Self.now(), ordering: .relaxed) }

    /// The sender is done, after `total` bytes.
    func finish(total: Int) {
        sentTotal.store(total, ordering: .relaxed)
        finished.store(true, ordering: .releasing)
    }

    var isFinished: Bool { finished.load(ordering: .acquiring) }

    /// The bytes sent in all, once finished.
    var total: Int { isFinished ? sentTotal.load(ordering: .relaxed) : -1 }

    /// The reader asks the sender to stop after its current chunk.
    func requestStop() { stopRequested.store(true, ordering: .releasing) }

    var isStopRequested: Bool { stopRequested.load(ordering: .acquiring) }

    /// How long since the sender last made progress.
    var idle: Duration { .nanoseconds(Self.now() - lastProgress.load(ordering: .relaxed)) }
}
