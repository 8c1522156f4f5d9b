/// The state of one client connection, kept by value in an array indexed by
/// connection number (never a dictionary, never a class per connection), so
/// that the hot path touches one contiguous record.
///
/// Messages are numbered from 0 on each connection. Three counters follow
/// them through their life, always `recvSeq <= sendSeq <= issued`:
///
/// - `issued`: messages allowed onto the wire (closed loop: while fewer than
///   `pipeline` are in flight; open loop: also once their scheduled time has
///   come). Issuing stamps the message's latency origin.
/// - `sendSeq` / `sendPos`: the first message not yet fully written, and how
///   much of it was.
/// - `recvSeq` / `recvPos`: the message whose reply is arriving, and how much
///   of it has.
///
/// An echo returns bytes in order, so the reply to message `k` is exactly the
/// upper-cased bytes of message `k`: no framing is needed to check it.
struct ClientConnection {
    /// Where the connection is in its life. It changes only through
    /// `move(to:counts:)`, which keeps `ConnectionCounts` in step.
    enum State: Int, CaseIterable, Sendable {
        /// Queued to connect, or waiting to retry.
        case waiting
        /// A non-blocking connect is in progress.
        case connecting
        /// Established (closed loop); its probe, the first message, sent as
        /// soon as it connected, is unanswered and has not timed out
        /// (`ConnectQueue`): it counts against the connect bound.
        case probing
        /// Established, and no reply yet: the probe timed out, or (open loop)
        /// there was no probe.
        case unanswered
        /// Established, and at least one reply came back.
        case answered
        /// Was established, and is closed for good.
        case finished
        /// Never established, and given up.
        case failed

        /// Whether the connection is established and open: it sends and receives.
        var isOpen: Bool { self == .probing || self == .unanswered || self == .answered }

        /// Whether a connection in this state may move to `next`.
        func canMove(to next: State) -> Bool {
            switch (self, next) {
            case (.waiting, .connecting), (.waiting, .probing), (.waiting, .unanswered), (.waiting, .failed):
                true
            case (.connecting, .waiting), (.connecting, .probing), (.connecting, .unanswered),
                (.connecting, .failed):
                true
            case (.probing, .unanswered), (.probing, .answered), (.probing, .finished):
                true
            // Replaced by a new connection (--reconnect, --connection-lifetime).
            case (.probing, .waiting), (.unanswered, .waiting), (.answered, .waiting):
                true
            case (.unanswered, .answered), (.unanswered, .finished), (.answered, .finished):
                true
            default:
                false
            }
        }
    }

    /// Where the connection is; see `move(to:counts:)`.
    private(set) var state = State.waiting
    var fd: CInt = -1
    /// Bumped for every socket, and carried in the epoll token, so that an
    /// event for an earlier socket of this connection is recognised as stale.
    var generation: UInt32 = 0
    var connectAttempts = 0
    /// Index of the source address the current socket is bound to.
    var source = 0
    /// The connect time-out, the probe's time-out, or when to retry.
    var deadline: Int64 = 0
    /// Whether EPOLLOUT is on (only while unsent bytes wait for room).
    var writeInterest = false

    var issued: UInt64 = 0
    var sendSeq: UInt64 = 0
    var sendPos = 0
    /// Pattern offset of message `sendSeq`.
    var sendOffset: Int
    var recvSeq: UInt64 = 0
    var recvPos = 0
    /// Pattern offset of message `recvSeq`.
    var recvOffset: Int
    /// Open loop: messages whose scheduled time has come, counted over every
    /// socket this connection has had.
    var scheduled: UInt64 = 0
    /// Open loop: the schedule's number of this socket's message 0 (the
    /// messages earlier sockets had answered).
    var scheduleBase: UInt64 = 0
    /// Messages this socket may still be given: all (`.max`), except for a
    /// replacement opened after the run stopped sending, which only sends
    /// again what its predecessor left unanswered.
    var issueLimit = UInt64.max
    /// Replies completed inside the measured window.
    var counted: UInt64 = 0

    /// Starts connection number `index` at its deterministic pattern offset.
    init(index: Int, payload: Payload) {
        sendOffset = payload.startOffset(connection: index)
        recvOffset = sendOffset
    }

    /// Moves the connection to `next` and `counts` with it: the one place
    /// where a connection's state changes, so the counts cannot drift from
    /// the states.
    ///
    /// - Precondition: `state.canMove(to: next)`.
    mutating func move(to next: State, counts: inout ConnectionCounts) {
        precondition(state.canMove(to: next), "connection moved from \(state) to \(next)")
        counts.record(from: state, to: next)
        state = next
    }

    /// Messages issued whose reply has not fully arrived.
    var inFlight: Int { Int(issued &- recvSeq) }

    /// Messages written, in full or in part, whose reply has not fully arrived.
    var unanswered: Int { Int(sendSeq &- recvSeq) + (sendPos > 0 ? 1 : 0) }

    /// Starts over for a new socket: message 0 of the new connection is the
    /// first message this one had no whole reply for, so that what was not
    /// answered is sent again, byte for byte.
    mutating func restart() {
        sendOffset = recvOffset
        scheduleBase += recvSeq
        issued = 0
        sendSeq = 0
        sendPos = 0
        recvSeq = 0
        recvPos = 0
        connectAttempts = 0
        writeInterest = false
        fd = -1
    }

    /// Whether issued bytes still wait to be written.
    var hasUnsent: Bool { sendSeq < issued }

    /// What a chunk of received bytes turned out to be.
    enum Received {
        /// Every byte matched; `completed` replies are now whole.
        case matched(completed: Int)
        /// A byte differed from the upper-cased message in the run of bytes
        /// starting at `chunkOffset`, which belongs to message `recvSeq` from
        /// `recvPos` on (both left as they were before the run).
        case mismatch(chunkOffset: Int)
        /// More bytes came back than were sent.
        case excess
    }

    /// Checks `bytes`, just read, against the expected replies, across
    /// message boundaries, and records the latency of each reply it
    /// completes.
    ///
    /// - Parameters:
    ///   - origins: this connection's ring of `pipeline` latency origins,
    ///     indexed by message number modulo `pipeline`.
    ///   - now: when the bytes arrived (monotonic ns).
    @inline(__always)
    mutating func receive(
        _ bytes: UnsafeRawBufferPointer,
        payload: Payload,
        origins: UnsafeMutablePointer<Int64>,
        pipeline: Int,
        now: Int64,
        measurement: inout Measurement
    ) -> Received {
        let size = payload.size
        let outstanding = Int(sendSeq &- recvSeq) * size + sendPos - recvPos
        guard bytes.count <= outstanding else { return .excess }
        var cursor = bytes.baseAddress!
        var remaining = bytes.count
        var completed = 0
        while remaining > 0 {
            let count = min(size - recvPos, remaining)
            guard payload.matches(cursor, expectedAt: recvOffset + recvPos, count: count) else {
                return .mismatch(chunkOffset: bytes.count - remaining)
            }
            cursor += count
            remaining -= count
            recvPos += count
            if recvPos == size {
                let origin = origins[Int(recvSeq % UInt64(pipeline))]
                if measurement.complete(latency: now - origin, at: now) { counted += 1 }
                recvSeq += 1
                recvPos = 0
                recvOffset = payload.offset(after: recvOffset, messages: 1)
                completed += 1
            }
        }
        return .matched(completed: completed)
    }

    /// Closed loop: issues messages until `pipeline` are in flight (and at
    /// most `lifetime` on this connection), each with `now` as its latency
    /// origin. Returns how many it issued.
    @inline(__always)
    mutating func issueClosedLoop(
        pipeline: Int, now: Int64, origins: UnsafeMutablePointer<Int64>, lifetime: UInt64 = .max
    ) -> Int {
        var added = 0
        while inFlight < pipeline && issued < lifetime {
            origins[Int(issued % UInt64(pipeline))] = now
            issued += 1
            added += 1
        }
        return added
    }

    /// Open loop: issues the messages whose time has come, as long as fewer
    /// than `pipeline` are in flight, each with its *scheduled* time as its
    /// latency origin: a message that waited for a slot is charged the wait
    /// (no coordinated omission). Returns how many it issued.
    @inline(__always)
    mutating func issueOpenLoop(
        pipeline: Int,
        schedule: OpenLoopSchedule,
        connection: Int,
        origins: UnsafeMutablePointer<Int64>,
        lifetime: UInt64 = .max
    ) -> Int {
        var added = 0
        while inFlight < pipeline && scheduleBase + issued < scheduled && issued < lifetime {
            origins[Int(issued % UInt64(pipeline))] = schedule.time(
                message: scheduleBase + issued, connection: connection)
            issued += 1
            added += 1
        }
        return added
    }

    /// The next bytes to write: the unwritten rest of message `sendSeq` and
    /// the issued messages after it that lie next to it in the pattern, as an
    /// offset into the pattern and a byte count; `nil` when all is written.
    @inline(__always)
    func unsentRun(payload: Payload) -> (offset: Int, count: Int)? {
        guard sendSeq < issued else { return nil }
        let messages = min(Int(issued - sendSeq), payload.contiguousMessages(from: sendOffset))
        return (sendOffset + sendPos, messages * payload.size - sendPos)
    }

    /// Advances the send cursor past `count` written bytes.
    @inline(__always)
    mutating func didSend(_ count: Int, payload: Payload) {
        let total = sendPos + count
        let messages = total / payload.size
        sendPos = total % payload.size
        if messages > 0 {
            sendSeq += UInt64(messages)
            sendOffset = payload.offset(after: sendOffset, messages: messages)
        }
    }
}

/// How many connections are in each state, changed only by
/// `ClientConnection.move(to:counts:)`; the figures of the connect phase,
/// the run and the report are all read from it.
struct ConnectionCounts: Equatable {
    /// Indexed by `State.rawValue`; the sum is always the number of connections.
    private var byState: [Int]

    /// `connections` connections, every one waiting to connect.
    init(connections: Int) {
        byState = Array(repeating: 0, count: ClientConnection.State.allCases.count)
        byState[ClientConnection.State.waiting.rawValue] = connections
    }

    /// The counts of `connections`, counted one by one: what the kept counts
    /// must always equal.
    init(recounting connections: [ClientConnection]) {
        byState = Array(repeating: 0, count: ClientConnection.State.allCases.count)
        for connection in connections { byState[connection.state.rawValue] += 1 }
    }

    /// One connection moved from `old` to `new`.
    fileprivate mutating func record(from old: ClientConnection.State, to new: ClientConnection.State) {
        byState[old.rawValue] -= 1
        byState[new.rawValue] += 1
    }

    /// The connections in `state`.
    subscript(state: ClientConnection.State) -> Int { byState[state.rawValue] }

    /// Queued to connect, or waiting to retry.
    var waiting: Int { self[.waiting] }
    /// Connects in progress.
    var connecting: Int { self[.connecting] }
    /// Connects and probes in flight: the connect phase's bound
    /// (`ConnectQueue.maxInFlight`) applies to these.
    var outstanding: Int { self[.connecting] + self[.probing] }
    /// Established and not closed.
    var open: Int { self[.probing] + self[.unanswered] + self[.answered] }
    /// Established, not closed, and without a reply yet.
    var awaitingFirstReply: Int { self[.probing] + self[.unanswered] }
    /// Established at some point, closed since or not.
    var established: Int { open + self[.finished] }
    /// Given up without ever being established.
    var failed: Int { self[.failed] }
    /// Whether the connect phase is over: every connection is established
    /// (and its probe answered or timed out) or given up.
    var connectsSettled: Bool { waiting == 0 && outstanding == 0 }
}

/// When each open-loop message is due: the `--rate` messages per second are
/// spread evenly over time and dealt to the connections in turn, so message
/// `k` of connection `c` is global message `g = k * connections + c`, due at
/// `start + g / rate`. Each connection thus sends every `connections / rate`
/// seconds, the connections staggered evenly inside that interval.
struct OpenLoopSchedule {
    let start: Int64
    let nanosecondsPerMessage: Double
    let connections: Int

    /// When global message `global` is due (monotonic ns).
    @inline(__always)
    func time(global: UInt64) -> Int64 {
        start + Int64(Double(global) * nanosecondsPerMessage)
    }

    /// When message `message` of connection `connection` is due.
    @inline(__always)
    func time(message: UInt64, connection: Int) -> Int64 {
        time(global: message * UInt64(connections) + UInt64(connection))
    }
}
