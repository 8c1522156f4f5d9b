// Drives OutboundBuffer with random appends and partial consumes, against a
// plain array as the model: every consumed byte, and the count, must match.
import Reactor

/// libFuzzer's entry point: runs one input; a failed precondition is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOutboundBuffer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    var buffer = OutboundBuffer()
    var model: [UInt8] = []
    var next: UInt8 = 0
    while let op = input.byte() {
        let amount = Int(input.byte() ?? 0) * (op & 0x80 != 0 ? 97 : 1)
        if op & 1 == 0 {
            let bytes = (0..<amount).map { _ in
                next &+= 1
                return next
            }
            bytes.withUnsafeBytes { buffer.append($0) }
            model += bytes
        } else {
            buffer.consume { pending in
                precondition(pending.count == model.count, "queued count differs from the model")
                precondition(pending.elementsEqual(model), "queued bytes differ from the model")
                return min(amount, pending.count)
            }
            model.removeFirst(min(amount, model.count))
        }
        precondition(buffer.count == model.count && buffer.isEmpty == model.isEmpty, "count differs from the model")
    }
    return 0
}

/// Reads the fuzzer's bytes one at a time.
struct FuzzInput {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0

    init(_ data: UnsafePointer<UInt8>, _ size: Int) {
        bytes = UnsafeBufferPointer(start: data, count: size)
    }

    mutating func byte() -> UInt8? {
        guard position < bytes.count else { return nil }
        defer { position += 1 }
        return bytes[position]
    }
}
