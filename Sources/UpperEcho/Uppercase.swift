/// The lesson's transform, Python's `bytes.upper()`: ASCII `a`-`z` become
/// `A`-`Z`; every other byte, including every byte of 0x80 and above, is
/// left as it is. It is not Unicode-aware, on purpose: the service is
/// defined on bytes.
public enum Uppercase {
    /// Upper-cases `bytes` in place, eight bytes at a time.
    ///
    /// For each byte of a 64-bit word at once (SWAR): clear the top bit, add
    /// offsets so that bytes at or above `a`, and bytes above `z`, get their
    /// top bit set; a lower-case byte is one above `a`, not above `z`, and not
    /// above 0x7F. Its 0x80 marker, shifted right by two, is 0x20: the bit
    /// that separates `a` from `A`.
    @inlinable
    public static func apply(_ bytes: UnsafeMutableRawBufferPointer) {
        guard var pointer = bytes.baseAddress else { return }
        var remaining = bytes.count
        let ones: UInt64 = 0x0101_0101_0101_0101
        while remaining >= 8 {
            let word = pointer.loadUnaligned(as: UInt64.self)
            let low7 = word & (ones &* 0x7F)
            let atLeastA = low7 &+ ones &* (0x80 - 0x61)
            let aboveZ = low7 &+ ones &* (0x80 - 0x7B)
            let lower = atLeastA & ~aboveZ & ~word & (ones &* 0x80)
            pointer.storeBytes(of: word ^ (lower >> 2), as: UInt64.self)
            pointer += 8
            remaining -= 8
        }
        while remaining > 0 {
            let byte = pointer.load(as: UInt8.self)
            if byte >= 0x61 && byte <= 0x7A { pointer.storeBytes(of: byte - 0x20, as: UInt8.self) }
            pointer += 1
            remaining -= 1
        }
    }

    /// Upper-cases one byte: the reference the fast path is tested against.
    @inlinable
    public static func apply(_ byte: UInt8) -> UInt8 {
        byte >= 0x61 && byte <= 0x7A ? byte - 0x20 : byte
    }

    /// Returns an upper-cased copy of `bytes`.
    public static func applied(to bytes: [UInt8]) -> [UInt8] {
        var copy = bytes
        copy.withUnsafeMutableBytes { apply($0) }
        return copy
    }
}
