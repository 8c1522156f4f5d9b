import SystemPackage

/// How a connection looked from the client after a `recv`.
public enum Ending: Equatable, CustomStringConvertible {
    /// The server closed gracefully (`recv` returned 0).
    case endOfFile
    /// The server reset the connection (`ECONNRESET`).
    case reset
    /// Nothing came before the receive timeout.
    case timedOut
    /// Bytes came: the connection is alive.
    case data(Int)
    /// Another errno.
    case failed(Errno)

    /// A short phrase.
    public var description: String {
        switch self {
        case .endOfFile: "end of file"
        case .reset: "reset"
        case .timedOut: "timed out"
        case .data(let count): "\(count) bytes"
        case .failed(let errno): "\(errno)"
        }
    }

    /// Whether the server closed the connection, gracefully or not.
    public var isClosed: Bool { self == .endOfFile || self == .reset }
}

/// Python's `bytes.upper()` of one byte, written independently of the
/// server's version: the byte values 97...122 lose 32, every other byte stays.
public func pythonUpper(_ byte: UInt8) -> UInt8 {
    97 <= byte && byte <= 122 ? byte - 32 : byte
}

/// Python's `bytes.upper()`.
public func pythonUpper(_ bytes: [UInt8]) -> [UInt8] {
    bytes.map(pythonUpper)
}

/// Python's `bytes.upper()` in place: what the test handlers that echo
/// upper-cased do, independently of the server's `Uppercase`.
public func upperInPlace(_ bytes: UnsafeMutableRawBufferPointer) {
    for index in bytes.indices { bytes[index] = pythonUpper(bytes[index]) }
}
