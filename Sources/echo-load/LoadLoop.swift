import LinuxEpoll
import Syscalls
import SystemPackage

/// The load generator: one thread, one epoll, every connection.
///
/// A run has four phases: connect (in bounded batches, with retries; closed
/// loop: each connection's first message is its probe, see `ConnectQueue`), run
/// (warm-up, then the measured window), drain (no new messages; wait up to
/// `drainTime` for the replies in flight), done. Each turn of the loop reads
/// in order: compute the timeout, wait, dispatch I/O, run timers (phase
/// changes, progress, connect time-outs, open-loop sends), start connects.
///
/// The hot path allocates nothing: one read buffer, one event buffer,
/// connection state by value in an array indexed by connection number, and
/// the epoll token `generation << 32 | connection` instead of a lookup.
///
/// Sockets are level-triggered: a read stops at a short read or EAGAIN (the
/// kernel reports again whatever arrives later), and EPOLLOUT is on only
/// while a send left bytes unwritten.
struct LoadLoop {
    enum Phase { case connecting, running, draining, done }

    static let readBufferSize = 64 * 1024
    static let drainTime: Int64 = 2_000_000_000
    static let progressInterval: Int64 = 1_000_000_000
    /// The token of the open-loop timer; connection tokens never reach it.
    static let timerToken = UInt64.max

    let plan: LoadPlan
    let payload: Payload
    let epoll: Epoll
    let events = Epoll.EventBuffer(capacity: 1024)
    let storage: LoopStorage
    /// This many latency origins per connection, `storage.origins`.
    let pipeline: Int
    var connections: [ClientConnection]
    /// How many connections are in each state; see `move(_:to:)`.
    var counts: ConnectionCounts
    var measurement = Measurement()
    /// The server's CPU and memory over the window, with `--server-pid`.
    var probe: ServerProbe?
    var phase = Phase.connecting
    var now: Int64 = 0
    /// Replies expected across all connections.
    var inFlightTotal = 0
    /// Whether the measured window has begun.
    var windowOpened = false
    var started: Int64 = 0
    var nextProgress: Int64 = 0
    var drainEnd: Int64 = 0
    var connector: ConnectQueue
    var schedule: OpenLoopSchedule?
    /// The next open-loop message not yet released, numbered globally.
    var nextGlobal: UInt64 = 0
    var timerFD: CInt = -1
    var timerArmedAt: Int64 = 0
    /// Error messages already written to standard error, so each is shown once.
    var reported: Set<String> = []

    init(plan: LoadPlan, payload: Payload) throws(LoadError) {
        self.plan = plan
        probe = plan.serverPID.map { ServerProbe(pid: $0) }
        self.payload = payload
        pipeline = plan.pipeline
        do { epoll = try Epoll() } catch { throw .setup("epoll: \(error)") }
        storage = LoopStorage(readBufferSize: Self.readBufferSize, origins: plan.connections * plan.pipeline)
        connections = (0..<plan.connections).map { ClientConnection(index: $0, payload: payload) }
        counts = ConnectionCounts(connections: plan.connections)
        connector = ConnectQueue(connections: plan.connections, target: plan.target)
        if plan.rate != nil {
            switch system_timerfd_create_monotonic() {
            case .success(let fd): timerFD = fd
            case .failure(let errno): throw .setup("timerfd_create: \(errno)")
            }
            do { try epoll.register(timerFD, events: .in, userData: Self.timerToken) } catch {
                throw .setup("epoll: \(error)")
            }
        }
    }

    /// Runs the whole test and returns what it measured. Every run stops by
    /// itself: connect time-outs bound the connect phase, the clock the rest.
    mutating func run() -> LoadResult {
        now = system_clock_gettime_monotonic()
        started = now
        nextProgress = now + Self.progressInterval
        startConnects()
        while phase != .done {
            // Wait until the next deadline or I/O.
            let timeout = nextTimeout()
            do { try epoll.poll(into: events, timeout: .nanoseconds(timeout)) } catch {
                report("epoll_wait: \(error)")
                break
            }
            now = system_clock_gettime_monotonic()
            // Dispatch I/O.
            for index in 0..<events.count {
                dispatch(token: events.userData(at: index), events: events.events(at: index))
            }
            now = system_clock_gettime_monotonic()
            // Timers: phase changes, progress, connect time-outs, open-loop sends.
            runTimers()
            // Deferred work: new sockets only here, never in the middle of a batch of events.
            startConnects()
        }
        return finish()
    }

    /// Nanoseconds until the next deadline; arms the open-loop timer, which
    /// wakes the loop more precisely than epoll's whole milliseconds.
    private mutating func nextTimeout() -> Int64 {
        var deadline = nextProgress
        switch phase {
        case .connecting: deadline = min(deadline, connector.nextSweep)
        case .running:
            deadline = min(deadline, windowOpened ? measurement.windowEnd : measurement.windowStart)
            if plan.replacesConnections { deadline = min(deadline, connector.nextSweep) }
            if let schedule { armTimer(at: schedule.time(global: nextGlobal)) }
        case .draining:
            deadline = min(deadline, drainEnd)
            if plan.replacesConnections { deadline = min(deadline, connector.nextSweep) }
        case .done: deadline = now
        }
        return max(0, deadline - now)
    }

    private mutating func armTimer(at deadline: Int64) {
        guard deadline != timerArmedAt else { return }
        timerArmedAt = deadline
        _ = system_timerfd_settime_absolute(timerFD, deadlineNanoseconds: deadline)
    }

    private mutating func dispatch(token: UInt64, events: Epoll.Events) {
        if token == Self.timerToken {
            var expirations: UInt64 = 0
            _ = withUnsafeMutableBytes(of: &expirations) { system_read(timerFD, $0) }
            timerArmedAt = 0
            return
        }
        let index = Int(token & 0xFFFF_FFFF)
        guard connections[index].generation == UInt32(token >> 32) else { return }
        switch connections[index].state {
        case .connecting:
            finishConnect(index)
        case .probing, .unanswered, .answered:
            if !events.isDisjoint(with: [.in, .err, .hup, .rdhup]) { readable(index) }
            if events.contains(.out) && connections[index].state.isOpen { flush(index) }
        case .waiting, .finished, .failed:
            return
        }
    }

    /// Reads until a short read or EAGAIN, checking every byte.
    private mutating func readable(_ index: Int) {
        let fd = connections[index].fd
        let buffer = storage.readBuffer
        let origins = storage.origins + index * pipeline
        while true {
            switch system_recv(fd, buffer) {
            case .success(0):
                endOfFile(index)
                return
            case .success(let count):
                now = system_clock_gettime_monotonic()
                let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<count])
                switch connections[index].receive(
                    bytes, payload: payload, origins: origins, pipeline: pipeline, now: now,
                    measurement: &measurement)
                {
                case .matched(let completed):
                    inFlightTotal -= completed
                    if completed > 0 && connections[index].state != .answered { move(index, to: .answered) }
                    if let lifetime = plan.connectionLifetime, connections[index].recvSeq >= lifetime {
                        endOfLifetime(index)
                        return
                    }
                case .mismatch(let offset):
                    describeMismatch(index, bytes[offset...])
                    measurement.errors.mismatches += 1
                    close(index)
                    return
                case .excess:
                    report("connection \(index): the server sent more bytes than it was sent")
                    measurement.errors.mismatches += 1
                    close(index)
                    return
                }
                if phase == .running || connections[index].issueLimit != .max { issue(index) }
                if !connections[index].state.isOpen || count < buffer.count { return }
            case .failure(let errno) where errno == .resourceTemporarilyUnavailable:
                return
            case .failure(let errno):
                failed(index, errno)
                return
            }
        }
    }

    /// Issues what the loop allows on connection `index`, then writes it.
    mutating func issue(_ index: Int) {
        let origins = storage.origins + index * pipeline
        if let schedule {
            inFlightTotal += connections[index].issueOpenLoop(
                pipeline: pipeline, schedule: schedule, connection: index, origins: origins,
                lifetime: issueLimit(index))
        } else {
            inFlightTotal += connections[index].issueClosedLoop(
                pipeline: pipeline, now: now, origins: origins, lifetime: issueLimit(index))
        }
        if !connections[index].writeInterest && connections[index].hasUnsent { flush(index) }
    }

    /// Issues and writes connection `index`'s probe: one message, timed
    /// like any other, which the warm-up absorbs.
    mutating func sendProbe(_ index: Int) {
        let origins = storage.origins + index * pipeline
        // One message, message 0, whose origin lives at index 0 of the ring.
        inFlightTotal += connections[index].issueClosedLoop(pipeline: 1, now: now, origins: origins)
        flush(index)
    }

    /// Writes issued bytes until all are written or the socket is full; only
    /// then is EPOLLOUT turned on.
    private mutating func flush(_ index: Int) {
        let fd = connections[index].fd
        while let run = connections[index].unsentRun(payload: payload) {
            switch system_send(fd, UnsafeRawBufferPointer(start: payload.pattern + run.offset, count: run.count)) {
            case .success(let written):
                connections[index].didSend(written, payload: payload)
                if written < run.count {
                    setWriteInterest(index, true)
                    return
                }
            case .failure(let errno) where errno == .resourceTemporarilyUnavailable:
                setWriteInterest(index, true)
                return
            case .failure(let errno):
                failed(index, errno)
                return
            }
        }
        setWriteInterest(index, false)
    }

    private mutating func setWriteInterest(_ index: Int, _ on: Bool) {
        guard connections[index].writeInterest != on else { return }
        connections[index].writeInterest = on
        let events: Epoll.Events = on ? [.in, .out] : [.in]
        do { try epoll.modify(connections[index].fd, events: events, userData: token(index)) } catch {
            report("epoll_ctl: \(error)")
            measurement.errors.resets += 1
            close(index)
        }
    }

    /// Closes connection `index` for good: an open one is finished; one
    /// not yet established has failed.
    mutating func close(_ index: Int) {
        switch connections[index].state {
        case .probing, .unanswered, .answered:
            inFlightTotal -= connections[index].inFlight
            move(index, to: .finished)
        case .waiting, .connecting:
            move(index, to: .failed)
        case .finished, .failed:
            break
        }
        if connections[index].fd >= 0 { _ = system_close(connections[index].fd) }
        connections[index].fd = -1
    }

    /// Connection `index` had its `--connection-lifetime` replies: close it,
    /// and while the run goes on, open a new one in its place. During the
    /// connect phase (its probe was its last message) it stays open, idle,
    /// until the run begins (`beginRunning`).
    mutating func endOfLifetime(_ index: Int) {
        if phase == .connecting { return }
        measurement.errors.lifetimeCloses += 1
        if phase == .running { replace(index) } else { close(index) }
    }

    /// The most messages connection `index`'s socket may be given.
    private func issueLimit(_ index: Int) -> UInt64 {
        min(plan.connectionLifetime ?? .max, connections[index].issueLimit)
    }

    /// Closes connection `index` and queues a new one in its place, which
    /// starts with the first message this one had no whole reply for. Once
    /// the run has stopped sending (draining), the new one sends only those.
    mutating func replace(_ index: Int) {
        inFlightTotal -= connections[index].inFlight
        if connections[index].fd >= 0 { _ = system_close(connections[index].fd) }
        let unanswered = UInt64(connections[index].unanswered)
        connections[index].restart()
        connections[index].issueLimit = phase == .draining ? unanswered : .max
        move(index, to: .waiting)
        connector.push(index)
    }

    /// Moves connection `index` to `state`, and `counts` with it.
    mutating func move(_ index: Int, to state: ClientConnection.State) {
        connections[index].move(to: state, counts: &counts)
    }

    /// The epoll token of connection `index`'s current socket.
    func token(_ index: Int) -> UInt64 {
        UInt64(connections[index].generation) << 32 | UInt64(index)
    }
}

/// Why a run could not start.
enum LoadError: Error, CustomStringConvertible {
    case setup(String)

    var description: String {
        switch self {
        case .setup(let message): message
        }
    }
}
