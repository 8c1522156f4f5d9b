/// The loop's raw buffers, allocated once and freed when the loop goes.
final class LoopStorage {
    let readBuffer: UnsafeMutableRawBufferPointer
    let origins: UnsafeMutablePointer<Int64>

    init(readBufferSize: Int, origins count: Int) {
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        origins = .allocate(capacity: count)
        origins.initialize(repeating: 0, count: count)
    }

    deinit {
        readBuffer.deallocate()
        origins.deallocate()
    }
}
