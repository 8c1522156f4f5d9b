import TestSupport
import Testing

@testable import Reactor

@Suite("OutboundBuffer")
struct OutboundBufferTests {
    @Test("random appends and partial consumes keep the bytes and their order", arguments: [1, 2, 3, 4])
    func matchesModel(seed: UInt64) {
        var generator = SplitMix(seed: seed)
        var buffer = OutboundBuffer()
        var model: [UInt8] = []  // what must still be queued
        var nextByte: UInt8 = 0
        for _ in 0..<2_000 {
            if generator.next() % 2 == 0 {
                let size = Int(generator.next() % 3_000)
                let chunk = (0..<size).map { _ in
                    nextByte &+= 1
                    return nextByte
                }
                chunk.withUnsafeBytes { buffer.append($0) }
                model += chunk
            } else {
                let wanted = Int(generator.next() % 4_000)
                var seen: [UInt8] = []
                buffer.consume { pending in
                    seen = Array(pending)
                    return min(wanted, pending.count)
                }
                let same = seen == model
                #expect(same, "consume must see exactly the queued bytes, oldest first")
                model.removeFirst(min(wanted, model.count))
            }
            #expect(buffer.count == model.count)
            #expect(buffer.isEmpty == model.isEmpty)
        }
        var rest: [UInt8] = []
        buffer.consume { pending in
            rest = Array(pending)
            return pending.count
        }
        let same = rest == model
        #expect(same)
        #expect(buffer.isEmpty)
    }

    @Test("consuming nothing keeps everything")
    func consumeZero() {
        var buffer = OutboundBuffer()
        [UInt8]([1, 2, 3]).withUnsafeBytes { buffer.append($0) }
        buffer.consume { _ in 0 }
        #expect(buffer.count == 3)
        buffer.append(UnsafeRawBufferPointer(start: nil, count: 0))
        #expect(buffer.count == 3)
    }

    @Test("a drained buffer reuses its storage instead of growing")
    func drainedBufferReusesStorage() {
        var buffer = OutboundBuffer()
        let chunk = [UInt8](repeating: 0x61, count: 48 * 1024)
        chunk.withUnsafeBytes { buffer.append($0) }
        var firstStorage: UnsafeRawPointer?
        buffer.consume { pending in
            firstStorage = pending.baseAddress
            return pending.count
        }
        #expect(buffer.isEmpty)
        // Refill and drain many times, partly: the queue never holds more than
        // it did at first, so the same storage must serve every round.
        for round in 0..<50 {
            chunk.withUnsafeBytes { buffer.append(UnsafeRawBufferPointer(rebasing: $0[..<(1_000 * (round % 40 + 1))])) }
            var storage: UnsafeRawPointer?
            buffer.consume { pending in
                storage = pending.baseAddress
                return pending.count / 2
            }
            buffer.consume { $0.count }
            #expect(storage == firstStorage, "round \(round) reallocated the storage")
        }
    }

    @Test("a queue that never drains but is fed as fast as it is sent stays in one bounded storage")
    func steadyStateCompacts() {
        var buffer = OutboundBuffer()
        let chunk = [UInt8](repeating: 0x62, count: 1_000)
        chunk.withUnsafeBytes { buffer.append($0) }
        var lowest = UInt(bitPattern: -1)
        var outside = 0
        for round in 0..<20_000 {
            chunk.withUnsafeBytes { buffer.append(UnsafeRawBufferPointer(rebasing: $0[..<700])) }
            buffer.consume { pending in
                let address = UInt(bitPattern: pending.baseAddress!)
                // Without compaction the dead prefix would grow to 14 MB and
                // the storage would move; with it, reads stay near its start.
                if round < 100 {
                    // The storage still grows to its working size.
                } else if round < 200 {
                    lowest = min(lowest, address)
                } else if address < lowest || address >= lowest + 8_192 {
                    outside += 1
                }
                return 700
            }
        }
        #expect(buffer.count == 1_000)
        #expect(outside == 0)
    }

    @Test("removeAll empties the queue")
    func removeAllEmpties() {
        var buffer = OutboundBuffer()
        [UInt8](repeating: 1, count: 100).withUnsafeBytes { buffer.append($0) }
        buffer.removeAll()
        #expect(buffer.isEmpty)
        #expect(buffer.count == 0)
        var called = 0
        buffer.consume { pending in
            called = pending.count
            return 0
        }
        #expect(called == 0)
    }
}
