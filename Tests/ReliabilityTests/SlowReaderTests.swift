import Foundation
import Synchronization
import Syscalls
import Testing

extension ReliabilityTests {
    /// Scenario 3. 100 clients each send `size` bytes as fast as the server
    /// takes them (64 KiB blocking sends), and read their replies slowly at
    /// first (1 KiB every 20 ms, until their sender has made no progress for
    /// 1 s: every buffer between them and the server is full and the server
    /// has stopped reading them), then as fast as they can.
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
    /// exactly `size` bytes.
    ///
    /// On loopback the kernel buffers about 4 MiB per connection on its own
    /// (the server's send buffer grows to `tcp_wmem`'s 4 MiB even with the
    /// clients' buffers pinned small), so a client must send more than that
    /// before the server queues anything: the short form sends 6 MiB each.
    @Test func slowReadersStayWithinTheMemoryBound() throws {
        let clients = 100
        let size = Soak.pick(short: 6, soak: 16) << 20
        let slackKilobytes = 4 * 1024
        let perClientKilobytes = 64 + 64
        let server = try ServerProcess()
        defer { server.stop() }
        let baselineKilobytes = try #require(server.residentKilobytes())
        let boundKilobytes = baselineKilobytes + slackKilobytes + clients * perClientKilobytes
        let port = server.port

        let connections = try (0..<clients).map { _ in
            try Client(port: port, timeout: .seconds(60), receiveBuffer: 32 * 1024, sendBuffer: 64 * 1024)
        }
        let senders = (0..<clients).map { _ in SenderProgress() }
        let results = Lock<[Int: Verification]>([:])
        let sendErrors = Lock<[String]>([])
        let stalled = Atomic<Int>(0)
        let start = ContinuousClock.now
        let finished = runThreads(2 * clients, timeout: .seconds(Soak.pick(short: 120, soak: 600))) { thread in
            let index = thread / 2
            let client = connections[index]
            let sender = senders[index]
            if thread % 2 == 0 {
                do { try client.sendStream(index, count: size) { sender.advance(to: $0) } } catch {
                    sendErrors.withLock { $0.append("client \(index): \(error)") }
                }
                client.shutdownWrite()
                sender.finish()
            } else {
                var slow = true
                var result = client.verify(count: size, stream: index) { _ in
                    if slow && (sender.isFinished || sender.idle > .seconds(1)) {
                        slow = false
                        if !sender.isFinished { stalled.add(1, ordering: .relaxed) }
                    }
                    return slow ? (1024, .milliseconds(20)) : (65536, .zero)
                }
                // Nothing more: the server closes once the replies are delivered.
                if result.isExact(size) { result.ending = client.ending() == .endOfFile ? .complete : .timedOut }
                results.withLock { $0[index] = result }
            }
        }
        let elapsed = ContinuousClock.now - start
        try #require(finished, "the clients did not finish in time")
        let peakKilobytes = try #require(server.peakResidentKilobytes())
        let stats = try #require(server.stats())

        #expect(sendErrors.withLock { $0 }.isEmpty, "\(sendErrors.withLock { $0.prefix(3) })")
        let wrong = results.withLock { $0 }.filter { !$0.value.isExact(size) }
        #expect(results.withLock { $0.count } == clients)
        #expect(
            wrong.isEmpty, "\(wrong.count) clients wrong, e.g. \(wrong.first.map { "\($0.key): \($0.value)" } ?? "")")
        #expect(
            peakKilobytes <= boundKilobytes || Sanitizer.isActive,
            "peak RSS \(peakKilobytes) KiB above the bound \(boundKilobytes) KiB")
        // The test proves something only if replies piled up to the high water mark.
        let peakQueued = stats["peak_queued"] ?? 0
        #expect(peakQueued >= 64 * 1024 && peakQueued <= 128 * 1024, "peak_queued \(peakQueued)")
        #expect(stalled.load(ordering: .relaxed) > clients / 2, "few clients were held back: the test proved little")
        #expect(stats["bytes_in"] == clients * size && stats["bytes_out"] == clients * size, "\(stats)")
        #expect(server.isRunning, "upper-echo died: \(server.child.errors.text.suffix(500))")
        figure(
            "slow-readers",
            "clients=\(clients) each=\(size >> 20)MiB verified=\(clients - wrong.count)/\(clients)"
                + " held_back=\(stalled.load(ordering: .relaxed))/\(clients) in \(fixed(seconds(elapsed), 1))s"
                + " peak_rss_kb=\(peakKilobytes) bound_kb=\(boundKilobytes)"
                + " (baseline \(baselineKilobytes) + slack \(slackKilobytes) + \(clients) x \(perClientKilobytes))"
                + " peak_queued=\(peakQueued)\(Sanitizer.isActive ? " (sanitizer build: bound not asserted)" : "")"
        )
    }
}

/// How far a sender got, for its reader: the reader slows down until the
/// sender stalls.
final class SenderProgress: Sendable {
    private let lastProgress = Atomic<Int64>(SenderProgress.now())
    private let finished = Atomic<Bool>(false)

    private static let epoch = ContinuousClock.now

    private static func now() -> Int64 {
        let elapsed = ContinuousClock.now - epoch
        return elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
    }

    /// The sender sent more.
    func advance(to _: Int) { lastProgress.store(Self.now(), ordering: .relaxed) }

    /// The sender is done.
    func finish() { finished.store(true, ordering: .releasing) }

    var isFinished: Bool { finished.load(ordering: .acquiring) }

    /// How long since the sender last made progress.
    var idle: Duration { .nanoseconds(Self.now() - lastProgress.load(ordering: .relaxed)) }
}
