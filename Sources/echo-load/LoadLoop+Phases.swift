import Syscalls

extension LoadLoop {
    /// The timer phase of each turn: phase changes, open-loop sends, connect
    /// time-outs and the once-a-second progress line.
    mutating func runTimers() {
        switch phase {
        case .connecting:
            sweepConnects()
        case .running:
            if plan.replacesConnections { sweepConnects() }
            releaseScheduled()
            if !windowOpened && now >= measurement.windowStart { openWindowOrWait() }
            if now >= measurement.windowEnd {
                probe?.windowEnded(at: now)
                // The last, partial second gets its progress line too.
                if nextProgress - now < Self.progressInterval * 9 / 10 { printProgress() }
                // Stop sending; wait a little for the replies in flight.
                phase = .draining
                drainEnd = now + Self.drainTime
                nextProgress = .max
            }
        case .draining:
            if plan.replacesConnections { sweepConnects() }
        case .done:
            break
        }
        // Replacements that resend what was left unanswered are waited for too.
        let replacing = plan.replacesConnections && counts.waiting + counts.connecting + counts[.probing] > 0
        if phase == .draining && ((inFlightTotal == 0 && !replacing) || now >= drainEnd) { phase = .done }
        if phase == .running && counts.open == 0
            && (!plan.replacesConnections || counts.waiting + counts.connecting == 0)
        {
            phase = .done
        }
        if now >= nextProgress && phase != .done { printProgress() }
    }

    /// Every connection is established or given up: start the clock (warm-up,
    /// then the measured window) and the first messages.
    mutating func beginRunning() {
        phase = .running
        started = now
        nextProgress = now + Self.progressInterval
        measurement.windowStart = now + plan.warmupNanoseconds
        measurement.windowEnd = measurement.windowStart + plan.durationNanoseconds
        measurement.startInterval(at: now)
        guard counts.open > 0 else {
            phase = .done
            return
        }
        if let rate = plan.rate {
            schedule = OpenLoopSchedule(start: now, nanosecondsPerMessage: 1e9 / rate, connections: plan.connections)
            releaseScheduled()
        } else {
            for index in connections.indices where connections[index].state.isOpen {
                if let lifetime = plan.connectionLifetime, connections[index].recvSeq >= lifetime {
                    endOfLifetime(index)
                } else {
                    issue(index)
                }
            }
        }
    }

    /// The warm-up is over: open the measured window, unless (closed loop)
    /// some connection has not had its first reply yet. Then wait, up to
    /// `--first-reply-timeout` (30 s): a connection whose handshake the server's full
    /// accept queue dropped is retransmitted for seconds, and counting from
    /// before it is served would report as starved a connection the server
    /// never had. A connection still unanswered after that is counted from
    /// the window's start, and shows as the least served.
    private mutating func openWindowOrWait() {
        if plan.rate == nil && counts.awaitingFirstReply > 0
            && now < started + plan.warmupNanoseconds + plan.firstReplyTimeoutNanoseconds
        {
            measurement.windowStart = now + 10_000_000  // look again in 10 ms
            measurement.windowEnd = measurement.windowStart + plan.durationNanoseconds
            return
        }
        windowOpened = true
        probe?.windowStarted(at: now)
    }

    /// Open loop: hands each message whose time has come to its connection.
    /// A connection that is closed lets its share of the rate go unsent.
    private mutating func releaseScheduled() {
        guard let schedule else { return }
        let count = UInt64(plan.connections)
        while true {
            let due = schedule.time(global: nextGlobal)
            guard due <= now && due < measurement.windowEnd else { return }
            let index = Int(nextGlobal % count)
            nextGlobal += 1
            if connections[index].state.isOpen {
                connections[index].scheduled += 1
                issue(index)
            } else if plan.replacesConnections && connections[index].state != .failed {
                // Being replaced: due all the same, sent (and timed from now
                // on) once the new connection is established.
                connections[index].scheduled += 1
            }
        }
    }

    private mutating func printProgress() {
        let line: String
        if phase == .connecting {
            let seconds = Int((Double(now - started) / 1e9).rounded())
            line =
                "[connect \(seconds)s] \(counts.established)/\(plan.connections) established, "
                + "\(counts.connecting) connecting, \(counts[.probing]) awaiting a first reply, "
                + "\(counts.waiting) waiting, "
                + "\(measurement.errors.connectRetries) retries, \(counts.failed) failed\n"
        } else {
            line = measurement.progressLine(at: now, since: started)
        }
        system_write_stderr(line)
        nextProgress = max(nextProgress + Self.progressInterval, now + Self.progressInterval / 2)
    }

    /// Closes everything and sums up the run.
    mutating func finish() -> LoadResult {
        for index in connections.indices where connections[index].fd >= 0 {
            _ = system_close(connections[index].fd)
            connections[index].fd = -1
        }
        if timerFD >= 0 { _ = system_close(timerFD) }
        timerFD = -1
        epoll.close()
        var seconds = 0.0
        if measurement.windowStart != .max {
            let end = min(measurement.windowEnd, now)
            seconds = Double(max(0, end - measurement.windowStart)) / 1e9
        }
        var least: UInt64 = 0
        var most: UInt64 = 0
        var first = true
        for connection in connections where connection.issueLimit != .max {
            // A replacement that never got to send again what was left unanswered.
            if connection.state == .waiting || connection.state == .connecting { measurement.errors.unanswered += 1 }
        }
        for connection in connections where connection.state.isOpen || connection.state == .finished {
            if connection.state.isOpen && connection.issued > 0 && connection.recvSeq == 0 {
                measurement.errors.unanswered += 1
            }
            least = first ? connection.counted : min(least, connection.counted)
            most = max(most, connection.counted)
            first = false
        }
        return LoadResult(
            plan: plan,
            server: probe,
            messages: measurement.messages,
            seconds: seconds,
            histogram: measurement.histogram,
            leastPerConnection: least,
            mostPerConnection: most,
            established: counts.established,
            errors: measurement.errors
        )
    }
}
