import TestSupport
import Testing
import UpperEcho

/// Python's `bytes.upper()` one byte at a time: the specification.
private func reference(_ byte: UInt8) -> UInt8 {
    (0x61...0x7A).contains(byte) ? byte - 0x20 : byte
}

@Suite("Uppercase")
struct UppercaseTests {
    @Test("the one-byte reference upper-cases exactly a-z")
    func singleByte() {
        for value in 0...255 {
            let byte = UInt8(value)
            #expect(Uppercase.apply(byte) == reference(byte))
        }
        #expect(Uppercase.apply(UInt8(ascii: "a")) == UInt8(ascii: "A"))
        #expect(Uppercase.apply(UInt8(ascii: "z")) == UInt8(ascii: "Z"))
        #expect(Uppercase.apply(UInt8(ascii: "`")) == UInt8(ascii: "`"))
        #expect(Uppercase.apply(UInt8(ascii: "{")) == UInt8(ascii: "{"))
        #expect(Uppercase.apply(UInt8(0xE1)) == 0xE1)
    }

    /// Every byte value at every position of every buffer of 0 to 40 bytes,
    /// starting at every alignment from 0 to 7: in round `v` the byte at
    /// position `p` is `v + 97 p`, so over 256 rounds each position sees each
    /// value, next to ever different neighbours. The buffer transform
    /// (vectorized, SWAR, whatever it is) must match the reference and must
    /// not touch a byte outside the buffer.
    @Test("the buffer transform equals the byte reference for each byte value at each offset and length")
    func everyValueOffsetAndLength() {
        let guardByte: UInt8 = 0x71  // 'q': a stray write would upper-case it
        var failures: [String] = []
        for alignment in 0..<8 {
            for length in 0...40 {
                for round in 0..<256 {
                    var storage = [UInt8](repeating: guardByte, count: 56)
                    for position in 0..<length {
                        storage[alignment + position] = UInt8(truncatingIfNeeded: round + 97 * position)
                    }
                    var expected = storage
                    for index in alignment..<(alignment + length) { expected[index] = reference(expected[index]) }
                    storage.withUnsafeMutableBytes { raw in
                        Uppercase.apply(UnsafeMutableRawBufferPointer(rebasing: raw[alignment..<(alignment + length)]))
                    }
                    if storage != expected { failures.append("alignment \(alignment) length \(length) round \(round)") }
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    @Test("random buffers match the reference", arguments: [1, 2, 3])
    func randomBuffers(seed: UInt64) {
        var generator = SplitMix(seed: seed)
        for _ in 0..<300 {
            let length = Int(generator.next() % 5_000)
            let start = Int(generator.next() % 8)
            var bytes = (0..<(length + start)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let expected = Array(bytes.prefix(start)) + bytes.dropFirst(start).map(reference)
            bytes.withUnsafeMutableBytes { raw in
                Uppercase.apply(UnsafeMutableRawBufferPointer(rebasing: raw[start...]))
            }
            #expect(bytes == expected)
        }
    }

    @Test("applied(to:) returns an upper-cased copy")
    func appliedCopies() {
        let text = Array("Hello, wörld! abcxyz ABC {`} 0123456789".utf8)
        #expect(Uppercase.applied(to: text) == text.map(reference))
        #expect(String(decoding: Uppercase.applied(to: Array("hello world".utf8)), as: UTF8.self) == "HELLO WORLD")
        #expect(Uppercase.applied(to: []) == [])
    }
}
