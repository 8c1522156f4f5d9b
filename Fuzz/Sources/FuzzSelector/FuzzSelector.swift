// Drives every Selector backend with random register / modify / unregister /
// close-and-reuse / write / drain / select sequences on a pool of socket
// pairs, against a model of what must be reported. Any difference traps.
import Glibc
import Selectors
import SystemPackage

private let poolSize = 6

/// libFuzzer's entry point: runs one input; a failed precondition is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSelector(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let ops = Array(UnsafeBufferPointer(start: data, count: size))
    for kind in SelectorKind.allCases {
        run(ops, on: try! kind.makeSelector(of: Int.self))
    }
    return 0
}

private struct Pool {
    var near: [CInt] = []
    var far: [CInt] = []

    init() {
        for _ in 0..<poolSize { append() }
    }

    mutating func append() {
        var fds: [CInt] = [0, 0]
        precondition(socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
        near.append(fds[0])
        far.append(fds[1])
    }

    /// Replaces pair `slot` with a new one whose near end reuses the old number.
    mutating func reopen(_ slot: Int) {
        close(far[slot])
        append()
        let fresh = near.removeLast()
        far[slot] = far.removeLast()
        precondition(dup2(fresh, near[slot]) == near[slot])
        close(fresh)
    }

    func closeAll() {
        for fd in near + far { close(fd) }
    }
}

private func run(_ ops: [UInt8], on selector: any Selector<Int>) {
    var pool = Pool()
    defer {
        selector.close()
        pool.closeAll()
    }
    var registered: [Int: Interest] = [:]
    var readable = Set<Int>()
    var index = 0
    while index + 1 < ops.count {
        let op = ops[index] % 7
        let slot = Int(ops[index + 1]) % poolSize
        let interest = Interest(rawValue: ops[index] / 7 % 3 + 1)
        index += 2
        let fd = FileDescriptor(rawValue: pool.near[slot])
        switch op {
        case 0:
            do {
                try selector.register(fd, interest: interest, data: slot)
                precondition(registered[slot] == nil, "registered twice without an error")
                registered[slot] = interest
            } catch {
                precondition(registered[slot] != nil && error == .alreadyRegistered(fd), "unexpected \(error)")
            }
        case 1:
            do {
                try selector.modify(fd, interest: interest, data: slot)
                precondition(registered[slot] != nil, "modified an unknown descriptor")
                registered[slot] = interest
            } catch {
                precondition(registered[slot] == nil && error == .notRegistered(fd), "unexpected \(error)")
            }
        case 2, 5:
            do {
                try selector.unregister(fd)
                precondition(registered.removeValue(forKey: slot) != nil, "unregistered an unknown descriptor")
            } catch {
                precondition(registered[slot] == nil && error == .notRegistered(fd), "unexpected \(error)")
            }
            if op == 5 {
                pool.reopen(slot)
                readable.remove(slot)
            }
        case 3:
            var byte: UInt8 = 1
            precondition(write(pool.far[slot], &byte, 1) == 1)
            readable.insert(slot)
        case 4:
            var sink = [UInt8](repeating: 0, count: 4096)
            _ = read(pool.near[slot], &sink, sink.count)
            readable.remove(slot)
        default:
            var seen: [Int: Interest] = [:]
            for ready in try! selector.select(timeout: .zero) {
                precondition(seen[ready.key.data] == nil, "one descriptor reported twice")
                seen[ready.key.data] = ready.ready
            }
            var expected: [Int: Interest] = [:]
            for (slot, interest) in registered {
                var ready = interest.intersection(.write)  // a fresh socket pair is always writable
                if interest.contains(.read) && readable.contains(slot) { ready.insert(.read) }
                if !ready.isEmpty { expected[slot] = ready }
            }
            precondition(seen == expected, "reported \(seen), expected \(expected)")
        }
    }
}
