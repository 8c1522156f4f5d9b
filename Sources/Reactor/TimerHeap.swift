/// Identifies a scheduled timer, for `EventLoop.cancel(_:)`.
public struct TimerID: Hashable, Sendable {
    let value: UInt64
}

/// The loop's timers: a binary min-heap ordered by (deadline, sequence), so
/// timers due at the same instant fire in the order they were scheduled.
/// Cancelling is O(1): the callback is dropped at once and its heap entry
/// skipped when it comes up.
struct TimerHeap {
    private struct Entry {
        var deadline: UInt64
        var sequence: UInt64
        var id: UInt64

        func fires(before other: Entry) -> Bool {
            (deadline, sequence) < (other.deadline, other.sequence)
        }
    }

    private struct Timer {
        var callback: () -> Void
        /// Non-zero for a repeating timer.
        var interval: UInt64
    }

    private var heap: [Entry] = []
    private var timers: [UInt64: Timer] = [:]
    private var nextSequence: UInt64 = 0

    /// How many timers are scheduled and not cancelled.
    var count: Int { timers.count }

    /// Whether no timer is scheduled (cancelled ones do not count).
    var isEmpty: Bool { timers.isEmpty }

    /// Schedules `callback` at `deadline` (and every `interval` after it, if
    /// non-zero).
    mutating func schedule(at deadline: UInt64, interval: UInt64 = 0, _ callback: @escaping () -> Void) -> TimerID {
        nextSequence += 1
        let id = nextSequence
        timers[id] = Timer(callback: callback, interval: interval)
        push(Entry(deadline: deadline, sequence: nextSequence, id: id))
        return TimerID(value: id)
    }

    /// Cancels a timer; returns whether it was still scheduled.
    @discardableResult
    mutating func cancel(_ id: TimerID) -> Bool {
        timers.removeValue(forKey: id.value) != nil
    }

    /// The deadline of the next live timer, if any.
    mutating func nextDeadline() -> UInt64? {
        while let top = heap.first {
            if timers[top.id] != nil { return top.deadline }
            popTop()
        }
        return nil
    }

    /// Removes and returns the callback of the earliest timer due at `now`,
    /// rescheduling it first if it repeats. Returns `nil` when none is due.
    mutating func popDue(now: UInt64) -> (() -> Void)? {
        while let top = heap.first, top.deadline <= now {
            popTop()
            guard let timer = timers[top.id] else { continue }
            if timer.interval > 0 {
                nextSequence += 1
                // Catch up from `now`, not from the missed deadline, so a
                // stalled loop does not fire a burst.
                let next = max(top.deadline &+ timer.interval, now &+ 1)
                push(Entry(deadline: next, sequence: nextSequence, id: top.id))
            } else {
                timers[top.id] = nil
            }
            return timer.callback
        }
        return nil
    }

    private mutating func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].fires(before: heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popTop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var first = parent
            if left < heap.count && heap[left].fires(before: heap[first]) { first = left }
            if right < heap.count && heap[right].fires(before: heap[first]) { first = right }
            if first == parent { return }
            heap.swapAt(parent, first)
            parent = first
        }
    }
}
