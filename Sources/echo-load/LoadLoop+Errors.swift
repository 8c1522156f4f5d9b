import Syscalls
import SystemPackage

extension LoadLoop {
    /// Reports the first differing byte of a mismatched reply (the first
    /// mismatch of a run only, to keep standard error readable).
    mutating func describeMismatch(_ index: Int, _ bytes: UnsafeRawBufferPointer.SubSequence) {
        guard measurement.errors.mismatches == 0 else { return }
        let connection = connections[index]
        for (position, byte) in zip(0..., bytes) {
            let messageByte = connection.recvPos + position
            if messageByte >= payload.size { break }
            let expected = payload.upper.load(fromByteOffset: connection.recvOffset + messageByte, as: UInt8.self)
            guard byte != expected else { continue }
            let sent = payload.pattern.load(fromByteOffset: connection.recvOffset + messageByte, as: UInt8.self)
            report(
                "connection \(index), message \(connection.recvSeq), byte \(messageByte): received 0x\(hex(byte)), "
                    + "expected 0x\(hex(expected)) (sent 0x\(hex(sent)))"
            )
            return
        }
    }

    func hex(_ byte: UInt8) -> String {
        byte < 16 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
    }

    /// The server closed the connection: an error unless nothing was expected
    /// any more. With `--reconnect`, while connecting or running, a clean end
    /// (no reply owed) replaces the connection; with `--resend-unanswered`
    /// so does an end with replies owed, also after the run stopped sending,
    /// and the unanswered messages go out again.
    mutating func endOfFile(_ index: Int) {
        let owed = connections[index].unanswered
        let resends = plan.reconnect && plan.resendUnanswered && owed > 0
        let sending = phase == .connecting || phase == .running
        if (sending && plan.reconnect && owed == 0) || (phase != .done && resends) {
            measurement.errors.reconnects += 1
            measurement.errors.resent += owed
            replace(index)
            return
        }
        if !(phase == .draining && connections[index].inFlight == 0) { measurement.errors.unexpectedEOFs += 1 }
        close(index)
    }

    /// An established connection failed with `errno`.
    mutating func failed(_ index: Int, _ errno: Errno) {
        if errno != .connectionReset && errno != .brokenPipe { report("connection error: \(errno)") }
        measurement.errors.resets += 1
        close(index)
    }

    /// Writes `message` to standard error, once per distinct message.
    mutating func report(_ message: String) {
        guard reported.count < 20, reported.insert(message).inserted else { return }
        system_write_stderr("echo-load: \(message)\n")
    }
}
