/// The lesson's transform, Python's `bytes.upper()`: ASCII `a`-`z` become
/// `A`-`Z`; every other byte, including every byte of 0x80 and above, is
/// left as it is. It is not Unicode-aware, on purpose: the service is
/// defined on bytes.
public enum Uppercase {
    /// Upper-cases `bytes` in place.
    ///
    /// The loop has no branch per byte (see `apply(_:)` for one byte), so the
    /// compiler vectorizes it to 16 bytes and more per step.
    @inlinable
    public static func apply(_ bytes: UnsafeMutableRawBufferPointer) {
        let bytes = bytes.bindMemory(to: UInt8.self)
        for index in bytes.indices {
            bytes[index] = apply(bytes[index])
        }
    }

    /// Upper-cases one byte. Subtracting `a` maps `a`-`z` to 0-25 and every
    /// other byte, by wrapping around, to 26 or more; so one comparison
    /// decides, and the compiler turns it into a select, not a branch.
    @inlinable
    public static func apply(_ byte: UInt8) -> UInt8 {
        byte &- 0x61 < 26 ? byte &- 0x20 : byte
    }

    /// Returns an upper-cased copy of `bytes`.
    public static func applied(to bytes: [UInt8]) -> [UInt8] {
        var copy = bytes
        copy.withUnsafeMutableBytes { apply($0) }
        return copy
    }
}
