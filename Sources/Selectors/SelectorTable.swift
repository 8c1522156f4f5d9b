import SystemPackage

/// The bookkeeping every backend shares: one slot per descriptor number,
/// holding the key and a generation that tells one registration of a number
/// from the next.
///
/// A token, stored with the kernel where the backend can (epoll's
/// `epoll_data`), packs the generation above the descriptor. An event
/// whose token's generation is not the slot's current one belongs to a
/// registration that is gone, and is dropped.
@usableFromInline
struct SelectorTable<Data> {
    @usableFromInline
    struct Slot {
        @usableFromInline var key: SelectorKey<Data>
        @usableFromInline var generation: UInt32
    }

    /// Indexed by descriptor number; grows to the highest registered one.
    @usableFromInline var slots: [Slot?] = []
    private var nextGeneration: UInt32 = 1

    /// How many descriptors are registered.
    private(set) var count = 0

    /// Packs a descriptor and a generation into one 64-bit token.
    static func token(fd: CInt, generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    /// The descriptor number inside a token.
    @inlinable
    static func descriptor(of token: UInt64) -> CInt {
        CInt(bitPattern: UInt32(truncatingIfNeeded: token))
    }

    /// The key of `fd`, if registered.
    func key(for fd: CInt) -> SelectorKey<Data>? {
        fd >= 0 && Int(fd) < slots.count ? slots[Int(fd)]?.key : nil
    }

    /// The token of the current registration of `fd`, if any.
    func token(for fd: CInt) -> UInt64? {
        guard fd >= 0, Int(fd) < slots.count, let slot = slots[Int(fd)] else { return nil }
        return Self.token(fd: fd, generation: slot.generation)
    }

    /// The key that `token` names, or `nil` when its registration is gone.
    @inlinable
    func key(forToken token: UInt64) -> SelectorKey<Data>? {
        let fd = Int(Self.descriptor(of: token))
        guard fd >= 0, fd < slots.count, let slot = slots[fd],
            slot.generation == UInt32(truncatingIfNeeded: token >> 32)
        else { return nil }
        return slot.key
    }

    /// Records a new registration and returns its token.
    mutating func insert(_ key: SelectorKey<Data>) -> UInt64 {
        let fd = Int(key.fileDescriptor.rawValue)
        if fd >= slots.count {
            slots.append(contentsOf: repeatElement(nil, count: Swift.max(fd + 1, slots.count * 2) - slots.count))
        }
        let generation = nextGeneration
        nextGeneration &+= 1
        if nextGeneration == 0 { nextGeneration = 1 }
        slots[fd] = Slot(key: key, generation: generation)
        count += 1
        return Self.token(fd: CInt(fd), generation: generation)
    }

    /// Replaces the key of a registration, keeping its generation.
    mutating func replace(_ key: SelectorKey<Data>) {
        slots[Int(key.fileDescriptor.rawValue)]!.key = key
    }

    /// Forgets the registration of `fd` and returns its key.
    mutating func remove(_ fd: CInt) -> SelectorKey<Data>? {
        guard let key = key(for: fd) else { return nil }
        slots[Int(fd)] = nil
        count -= 1
        return key
    }

    /// Forgets every registration.
    mutating func removeAll() {
        slots = []
        count = 0
    }
}
