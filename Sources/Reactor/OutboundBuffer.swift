/// The bytes a connection could not send yet, in order: a contiguous byte
/// array with a read offset. Appending copies only the unsent tail of a
/// write; the storage is kept and reused, so a connection that is sometimes
/// slow allocates once, not per write.
public struct OutboundBuffer: Sendable {
    private var storage: [UInt8] = []
    private var start = 0
    // Kept beside the storage's reference rather than read from its heap
    // header: a writer checks `isEmpty` on every chunk, and for a connection
    // that once queued that would be one more cache line to fetch.
    private var queued = 0

    /// Creates an empty buffer.
    public init() {}

    /// How many bytes are queued.
    public var count: Int { queued }

    /// Whether nothing is queued.
    public var isEmpty: Bool { queued == 0 }

    /// Queues `bytes` after what is already queued.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        compactIfWorthIt(adding: bytes.count)
        storage.append(contentsOf: bytes)
        queued += bytes.count
    }

    /// Calls `body` with the queued bytes, oldest first, and removes as many
    /// as it returns (what the kernel accepted).
    public mutating func consume(_ body: (UnsafeRawBufferPointer) -> Int) {
        let sent = storage.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        precondition(sent >= 0 && sent <= count, "consumed more bytes than queued")
        start += sent
        queued -= sent
        if queued == 0 {
            // Empty: rewind in place, keeping the capacity for next time.
            storage.removeAll(keepingCapacity: true)
            start = 0
        }
    }

    /// Drops everything queued and releases the storage.
    public mutating func removeAll() {
        storage = []
        start = 0
        queued = 0
    }

    /// Moves the live bytes to the front when the dead prefix is at least
    /// half the storage, so appends never grow the array without bound.
    private mutating func compactIfWorthIt(adding extra: Int) {
        guard start > 0, start >= storage.count / 2 else { return }
        storage.removeSubrange(0..<start)
        start = 0
    }
}
