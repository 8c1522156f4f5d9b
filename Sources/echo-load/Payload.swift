/// The bytes echo-load sends, and the bytes it expects back.
///
/// One pattern `P` of random bytes is generated once, with its upper-cased
/// twin `U`, each byte mapped through `replyTable`. Message `k` of connection `c` is the
/// `size` bytes of `P` at `offset(c, k) = (start(c) + k * size) % span`, so
/// that:
///
/// - sending never copies: consecutive messages of one connection lie side by
///   side in `P` until the offset wraps, and a whole pipeline of them goes out
///   in one `send`;
/// - checking never allocates: each reply byte is compared with `U` at the
///   same offset, however the reply is split across reads.
///
/// About 80 % of the pattern is lower-case letters (the bytes the server
/// changes); the rest is uniform over all 256 values, and every value occurs
/// at least once.
final class Payload {
    /// How far message offsets range; `P` is `span + size` bytes, so that a
    /// message starting anywhere below `span` fits.
    let span: Int
    /// The bytes of one message.
    let size: Int
    /// `P`: what is sent.
    let pattern: UnsafeRawPointer
    /// `U`: what must come back.
    let upper: UnsafeRawPointer
    private let seed: UInt64

    /// Generates the pattern for messages of `size` bytes from `seed`.
    init(size: Int, seed: UInt64, span: Int = 1 << 20) {
        precondition(size > 0 && span > 0)
        self.span = span
        self.size = size
        self.seed = seed
        let length = span + size
        let sent = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 16)
        var generator = SplitMix64(seed: seed)
        Self.fill(sent, using: &generator)
        let expected = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 16)
        Self.replyTable.withUnsafeBufferPointer { table in
            for index in 0..<length { expected[index] = table[Int(sent[index])] }
        }
        pattern = UnsafeRawPointer(sent.baseAddress!)
        upper = UnsafeRawPointer(expected.baseAddress!)
    }

    /// The byte the service must send back for each byte value, built from
    /// the service's definition rather than from any server's code (the
    /// server under test may share the code it would be checked against):
    /// 0x61...0x7A (`a`...`z`) come back as the value minus 0x20 (`A`...`Z`),
    /// every other byte unchanged.
    static let replyTable: [UInt8] = (0...255).map { value in
        (0x61...0x7A).contains(value) ? UInt8(value - 0x20) : UInt8(value)
    }

    deinit {
        pattern.deallocate()
        upper.deallocate()
    }

    /// The offset of message 0 of connection `connection`: spread over the
    /// pattern so that connections send different bytes.
    func startOffset(connection: Int) -> Int {
        var generator = SplitMix64(seed: seed ^ (UInt64(connection) &* 0x9E37_79B9_7F4A_7C15))
        return Int(generator.next() % UInt64(span))
    }

    /// The offset of the message `messages` after the one at `offset`.
    @inline(__always)
    func offset(after offset: Int, messages: Int) -> Int {
        (offset + messages * size) % span
    }

    /// How many messages, starting with the one at `offset`, lie side by side
    /// in the pattern before the offset wraps: at least 1.
    @inline(__always)
    func contiguousMessages(from offset: Int) -> Int {
        (span - offset + size - 1) / size
    }

    /// Whether `count` bytes at `received` equal the expected bytes at
    /// `offset` of `U`, compared a word at a time.
    @inline(__always)
    func matches(_ received: UnsafeRawPointer, expectedAt offset: Int, count: Int) -> Bool {
        let expected = upper + offset
        var index = 0
        while index + 32 <= count {
            var difference = received.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            difference ^= expected.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            var next = received.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
            difference |= next ^ expected.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
            next = received.loadUnaligned(fromByteOffset: index + 16, as: UInt64.self)
            difference |= next ^ expected.loadUnaligned(fromByteOffset: index + 16, as: UInt64.self)
            next = received.loadUnaligned(fromByteOffset: index + 24, as: UInt64.self)
            difference |= next ^ expected.loadUnaligned(fromByteOffset: index + 24, as: UInt64.self)
            if difference != 0 { return false }
            index += 32
        }
        while index + 8 <= count {
            let word = received.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            if word != expected.loadUnaligned(fromByteOffset: index, as: UInt64.self) { return false }
            index += 8
        }
        while index < count {
            let byte = received.load(fromByteOffset: index, as: UInt8.self)
            if byte != expected.load(fromByteOffset: index, as: UInt8.self) { return false }
            index += 1
        }
        return true
    }

    /// Four bytes in five are lower-case letters; the fifth is any byte.
    /// Values that chance left out are then written at random places, so
    /// that every one of the 256 values is sent.
    private static func fill(_ bytes: UnsafeMutableRawBufferPointer, using generator: inout SplitMix64) {
        var seen = [Bool](repeating: false, count: 256)
        for index in bytes.indices {
            let random = generator.next()
            let byte = random % 5 != 0 ? UInt8(0x61 + (random >> 8) % 26) : UInt8(truncatingIfNeeded: random >> 16)
            bytes[index] = byte
            seen[Int(byte)] = true
        }
        for value in 0..<256 where !seen[value] {
            bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(value)
        }
    }
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64), so
/// that `--seed` reproduces a run's payload byte for byte.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    /// Starts the sequence at `seed`.
    init(seed: UInt64) {
        state = seed
    }

    /// The next 64 random bits.
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
