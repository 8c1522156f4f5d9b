// What one suspended Swift task costs in resident memory, with nothing else:
// the floor under any async API that keeps a task per connection.
//
// Starts N child tasks in a discarding task group, each suspended on an
// UnsafeContinuation (what AsyncTCPConnection's waits are), reads VmRSS
// before and once all N are suspended, and prints KiB per task. Modes:
//
//   bare         the task suspends in its own body
//   cancellable  inside withTaskCancellationHandler, as a connection's wait
//   nested       four async calls deep, then cancellable (a server's
//                handler, its read, the wait, the handler)
//
// Usage: task-rss [N] [MODE...]   (default 10000, every mode). Run one mode
// per process for its figure: memory a mode frees stays in the allocator.
import Foundation
import Synchronization

let arguments = CommandLine.arguments.dropFirst()
let count = arguments.first.flatMap { Int($0) } ?? 10_000
let modes = arguments.dropFirst().isEmpty ? ["bare", "cancellable", "nested"] : Array(arguments.dropFirst())

func residentKiB() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
    }
    return 0
}

/// One slot per task; each task writes only its own.
final class Parked: @unchecked Sendable {
    let slots: UnsafeMutablePointer<UnsafeContinuation<Void, Never>?>
    let suspended = Atomic<Int>(0)
    init(_ count: Int) {
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil, count: count)
    }
    func park(_ index: Int) async {
        await withUnsafeContinuation { continuation in
            slots[index] = continuation
            suspended.add(1, ordering: .releasing)
        }
    }
    func resumeAll(_ count: Int) {
        for index in 0..<count { slots[index]?.resume() }
    }
}

@inline(never) func level(_ depth: Int, _ parked: Parked, _ index: Int) async {
    if depth == 0 {
        await withTaskCancellationHandler {
            await parked.park(index)
        } onCancel: {
        }
    } else {
        await level(depth - 1, parked, index)
    }
}

for mode in modes {
    let parked = Parked(count)
    let before = residentKiB()
    var during = 0
    await withDiscardingTaskGroup { group in
        for index in 0..<count {
            group.addTask {
                switch mode {
                case "bare": await parked.park(index)
                case "cancellable":
                    await withTaskCancellationHandler {
                        await parked.park(index)
                    } onCancel: {
                    }
                default: await level(3, parked, index)
                }
            }
        }
        while parked.suspended.load(ordering: .acquiring) < count { try? await Task.sleep(for: .milliseconds(10)) }
        during = residentKiB()
        parked.resumeAll(count)
    }
    let perTask = Double(during - before) / Double(count)
    print(
        mode.padding(toLength: 12, withPad: " ", startingAt: 0),
        String(format: "%8d tasks  %8d KiB before  %8d KiB suspended  %.2f KiB/task", count, before, during, perTask))
}
