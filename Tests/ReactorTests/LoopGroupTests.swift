import Dispatch
import Foundation
import Selectors
import Syscalls
import SystemPackage
import TestSupport
import Testing

@testable import Reactor

/// One loop's share of a served group: an upper-casing echo over the loop's
/// part of a `GroupListener`. Used only on its loop's thread; what the test
/// reads it records in `GroupRecord`.
final class GroupEcho: TCPConnectionHandler {
    let index: Int
    let record: GroupRecord
    unowned let loop: any EventLoopContext
    var listener: TCPListener!
    var connections: [ObjectIdentifier: TCPConnection] = [:]
    var stopping = false

    init(loop: any EventLoopContext, group: GroupListener, index: Int, record: GroupRecord) throws {
        self.loop = loop
        self.index = index
        self.record = record
        listener = try TCPListener(loop: loop, group: group, member: index) { [unowned self] fd in
            guard let connection = try? TCPConnection(loop: self.loop, fileDescriptor: fd, handler: self) else {
                return
            }
            self.connections[ObjectIdentifier(connection)] = connection
            self.record.accepted(on: self.index)
            if self.stopping { connection.closeLingering() }
        }
    }

    func connection(_ connection: TCPConnection, didRead bytes: UnsafeMutableRawBufferPointer) {
        record.read(Array(bytes), on: index)
        upperInPlace(bytes)
        connection.write(UnsafeRawBufferPointer(bytes))
    }

    func connectionDidClose(_ connection: TCPConnection, reason: TCPConnection.CloseReason) {
        connections[ObjectIdentifier(connection)] = nil
        listener.connectionDidClose()
        if stopping && connections.isEmpty { loop.stop() }
    }

    /// The graceful stop: accept no more, let every connection take its
    /// replies and close, then stop the loop.
    func shutdown() {
        stopping = true
        listener.close()
        for connection in connections.values { connection.closeLingering() }
        if connections.isEmpty { loop.stop() }
    }
}

/// What the loops of a served group did, readable from the test's thread.
final class GroupRecord: Sendable {
    private let state: Lock<(accepted: [Int], reads: [[UInt8]: Int])>

    init(loops: Int) { state = Lock((Array(repeating: 0, count: loops), [:])) }

    func accepted(on loop: Int) { state.withLock { $0.accepted[loop] += 1 } }
    /// Records a chunk read on `loop` (a whole message, in these tests: each is small and sent at once).
    func read(_ bytes: [UInt8], on loop: Int) { state.withLock { $0.reads[bytes] = loop } }

    /// Connections each loop started serving.
    var acceptedCounts: [Int] { state.withLock { $0.accepted } }
    /// The loop that read `message`, if any did.
    func loop(thatRead message: String) -> Int? { state.withLock { $0.reads[Array(message.utf8)] } }
}

/// A `LoopGroup` of `GroupEcho`s, started; `stop()` drains it gracefully.
final class ServedGroup: Sendable {
    let listener: GroupListener
    let group: LoopGroup<EpollSelector<Int>>
    let record: GroupRecord
    // Each loop's echo, kept here so that nothing else must hold it; used
    // only on its loop (and released after the group has stopped).
    private let echoes: Lock<[Unchecked<GroupEcho>?]>

    init(
        loops: Int, balance: Balance, options: TCPListener.Options = TCPListener.Options(),
        stallLimit: Duration = .milliseconds(100)
    ) throws {
        let listener = try GroupListener(
            host: "127.0.0.1", port: 0, loops: loops, balance: balance, options: options, stallLimit: stallLimit)
        let record = GroupRecord(loops: loops)
        let echoes = Lock<[Unchecked<GroupEcho>?]>(Array(repeating: nil, count: loops))
        group = try LoopGroup(loops: loops, selector: { try EpollSelector<Int>() }) { index, loop in
            let echo = try GroupEcho(loop: loop, group: listener, index: index, record: record)
            echoes.withLock { $0[index] = Unchecked(echo) }
        }
        self.listener = listener
        self.record = record
        self.echoes = echoes
    }

    var port: UInt16 { listener.localAddress.port }

    /// Sends every loop its graceful shutdown, and waits for all to stop.
    func stop() throws {
        let echoes = self.echoes
        group.execute { index, _ in echoes.withLock { $0[index] }?.value.shutdown() }
        try group.join()
    }
}

@Suite("LoopGroup: loops on every core, connections spread", .serialized, .timeLimit(.minutes(3)))
struct LoopGroupTests {
    static let balances: [Balance] = [.reusePort, .acceptor(.leastConnections), .acceptor(.roundRobin)]

    @Test(
        "1,000 connections over 2 and 8 loops: each served once, by one loop; the loops' counts add up; reuseport puts 40-60 % on each of 2",
        arguments: balances, [2, 8])
    func everyConnectionIsServedOnceAndTheCountsAddUp(balance: Balance, loops: Int) throws {
        _ = system_setrlimit_raise_nofile()
        // No loop counts as stalled, however slow a sanitizer makes it: the
        // exact balance is the policy's, with every loop a candidate.
        let served = try ServedGroup(loops: loops, balance: balance, stallLimit: .seconds(3600))
        let count = 1000
        // All open at once, so that the acceptor's policies have something to balance.
        let clients = try (0..<count).map { _ in try TestClient(port: served.port) }
        let pending = try PendingReplies(clients) { "connection \(10_000 + $0)" }
        #expect(pending.waitForAnswered(count), "answered \(pending.answered.count) of \(count)")
        #expect(pending.mismatched.isEmpty, "wrong replies: \(pending.mismatched.prefix(5))")
        let byLoop = (0..<count).map { served.record.loop(thatRead: "connection \(10_000 + $0)") }
        #expect(byLoop.allSatisfy { $0 != nil }, "a message was read by no loop")
        let accepted = served.record.acceptedCounts
        #expect(accepted.reduce(0, +) == count, "\(accepted)")
        #expect(served.listener.givenCounts == accepted, "the listener's counts \(served.listener.givenCounts)")
        for loop in 0..<loops {
            #expect(byLoop.count { $0 == loop } == accepted[loop], "loop \(loop)")
        }
        switch balance {
        case .reusePort where loops == 2:
            #expect(accepted.allSatisfy { (400...600).contains($0) }, "reuseport spread \(accepted)")
        case .acceptor:
            // Long-lived connections: exact balance, whichever policy.
            #expect(accepted.max()! - accepted.min()! <= 1, "\(balance) spread \(accepted)")
        default: break
        }
        print("LoopGroup \(balance) x \(loops): \(accepted)")
        for client in clients { client.close() }
        try served.stop()
    }

    @Test("long-lived connections under acceptor(leastConnections): after every arrival and departure, max - min <= 1")
    func leastConnectionsKeepsTheLoopsWithinOne() throws {
        let served = try ServedGroup(loops: 3, balance: .acceptor(.leastConnections), stallLimit: .seconds(3600))
        var clients: [TestClient] = []
        func spread() -> [Int] { served.listener.loads }
        for index in 0..<30 {
            let client = try TestClient(port: served.port)
            #expect(client.roundTrip("client \(index)"))
            clients.append(client)
            #expect(spread().max()! - spread().min()! <= 1, "after \(index + 1) arrivals: \(spread())")
        }
        // Ten leave from one loop: the next ten all go to that loop.
        let loop = try #require(served.record.loop(thatRead: "client 0"))
        let leaving = (0..<30).filter { served.record.loop(thatRead: "client \($0)") == loop }
        for index in leaving { clients[index].close() }
        #expect(waitUntil { spread()[loop] == 0 }, "\(spread())")
        for index in 30..<40 {
            let client = try TestClient(port: served.port)
            #expect(client.roundTrip("client \(index)"))
            #expect(served.record.loop(thatRead: "client \(index)") == loop, "client \(index): \(spread())")
            clients.append(client)
        }
        #expect(spread() == [10, 10, 10])
        for client in clients { client.close() }
        try served.stop()
    }

    @Test(
        "a loop blocked in a handler is handed no new connection under acceptor, either policy; once free, it is again",
        arguments: [AcceptorPolicy.leastConnections, .roundRobin])
    func aBlockedLoopIsHandedNothing(policy: AcceptorPolicy) throws {
        let served = try ServedGroup(loops: 2, balance: .acceptor(policy))
        let release = Condition(false)
        let blocked = Condition(false)
        let blockedAt = ContinuousClock.now
        served.group.handles[1].execute { _ in
            blocked.update { $0 = true }
            release.wait(until: { $0 }, then: { _ in })
        }
        blocked.wait(until: { $0 }, then: { _ in })
        // Until the acceptor can see it: busy for longer than the stall limit.
        let limit = served.listener.stallLimit
        #expect(
            waitUntil { served.group.handles[1].isStalled(longerThan: limit, now: SystemClock().now()) },
            "loop 1 never looked stalled")
        let before = served.listener.givenCounts[1]
        let clients = try (0..<20).map { _ in try TestClient(port: served.port) }
        let pending = try PendingReplies(clients) { "while blocked \(10 + $0)" }
        #expect(pending.waitForAnswered(20), "served \(pending.answered.count) of 20 while loop 1 was blocked")
        #expect(
            served.listener.givenCounts[1] == before, "loop 1 was handed \(served.listener.givenCounts[1] - before)")
        // Held at least the 500 ms the acceptor must ride out.
        while ContinuousClock.now - blockedAt < .milliseconds(500) { Thread.sleep(forTimeInterval: 0.05) }
        release.update { $0 = true }

        // Free again (asleep in its wait): it is handed connections again.
        #expect(waitUntil { served.group.handles[1].busySince == nil }, "loop 1 never went back to waiting")
        let later = try (0..<4).map { _ in try TestClient(port: served.port) }
        let after = try PendingReplies(later) { "after release \(10 + $0)" }
        #expect(after.waitForAnswered(4))
        #expect(served.listener.givenCounts[1] > before, "loop 1 got nothing after it was released")
        for client in clients + later { client.close() }
        try served.stop()
    }

    @Test(
        "a graceful group stop under connect load: every connection whose bytes a loop read gets its whole reply, then end of input",
        arguments: balances)
    func aGroupStopUnderConnectLoadResetsNoConnectionThatWasRead(balance: Balance) throws {
        let served = try ServedGroup(loops: 2, balance: balance)
        let port = served.port
        let stopping = Lock(false)
        let outcomes = Lock<[(message: String, reply: String, ending: Ending)]>([])
        // Each connection: connect, send one message, half-close, read the
        // reply and the end of input, close.
        let threads = (0..<4).map { thread in
            Background<Void> {
                var round = 0
                while !stopping.withLock({ $0 }) {
                    let message = "t\(thread) r\(100_000 + round)"
                    round += 1
                    guard let client = try? TestClient(port: port, timeout: .seconds(60)) else { continue }
                    guard (try? client.send(message)) != nil, (try? client.shutdownWrite()) != nil else {
                        outcomes.withLock { $0.append((message, "", .reset)) }
                        client.close()
                        continue
                    }
                    let reply = client.receive(count: message.utf8.count)
                    let ending = client.ending()
                    client.close()
                    outcomes.withLock { $0.append((message, String(decoding: reply, as: UTF8.self), ending)) }
                }
            }
        }
        // Under way: some connections already served.
        #expect(waitUntil { outcomes.withLock { $0.count } >= 200 }, "the load never got going")
        try served.stop()
        stopping.withLock { $0 = true }
        for thread in threads { try thread.join(timeout: .seconds(120)) }

        let all = outcomes.withLock { $0 }
        let read = all.filter { served.record.loop(thatRead: $0.message) != nil }
        let lost = read.filter { $0.reply != $0.message.uppercased() || $0.ending != .endOfFile }
        #expect(lost.isEmpty, "read by a loop, yet not answered in full then closed: \(lost.prefix(3))")
        #expect(read.count >= 200)
        print(
            "group stop (\(balance)): \(all.count) connections, \(read.count) read, \(all.count - read.count) never read"
        )
    }

    @Test("a set-up that throws on one loop fails the group with its error: no loop runs, every thread ends")
    func aFailedSetUpFailsTheGroup() throws {
        struct Refused: Error {}
        let ran = Counter()
        #expect(throws: Refused.self) {
            _ = try LoopGroup(loops: 3, selector: { try EpollSelector<Int>() }) { index, loop in
                // A timer due at once: it would fire in the first iteration.
                loop.schedule(after: .zero) { ran.add(1) }
                if index == 1 { throw Refused() }
            }
        }
        #expect(ran.current == 0)
        #expect(try threadNames().filter { $0.hasPrefix("loop-") }.isEmpty, "a loop thread is still alive")
    }

    @Test("stop and join from another thread; every loop runs on its own named thread")
    func stopJoinAndThreads() throws {
        let tokens = Lock<Set<String>>([])
        let group = try LoopGroup(loops: 3, selector: { try EpollSelector<Int>() }) { _, _ in }
        #expect(group.count == 3 && group.handles.count == 3)
        for handle in group.handles {
            let done = DispatchSemaphore(value: 0)
            handle.execute { _ in
                tokens.withLock { _ = $0.insert("\(currentThreadID() ?? 0)") }
                done.signal()
            }
            #expect(done.wait(timeout: .now() + 30) == .success)
        }
        #expect(tokens.withLock { $0.count } == 3, "the loops share a thread")
        #expect(try Set(threadNames()).isSuperset(of: ["loop-0", "loop-1", "loop-2"]))
        let stopper = Background { group.stop() }
        try stopper.join()
        try group.join()
        try group.join()  // a second join returns at once
    }

    @Test("the default loop count is the CPUs of the affinity mask")
    func defaultLoopCountIsTheAffinityMask() throws {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
        let list = line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)
        var cpus = 0
        for range in list.split(separator: ",") {
            let bounds = range.split(separator: "-").compactMap { Int($0) }
            cpus += bounds.count == 2 ? bounds[1] - bounds[0] + 1 : 1
        }
        #expect(LoopGroup<EpollSelector<Int>>.defaultLoopCount == cpus)
    }

    @Test("maxConnections counts the connections of every loop together, under each balance", arguments: balances)
    func theLimitIsTheGroups(balance: Balance) throws {
        var options = TCPListener.Options()
        options.maxConnections = 4
        let served = try ServedGroup(loops: 2, balance: balance, options: options)
        let clients = try (0..<4).map { _ in try TestClient(port: served.port) }
        for (index, client) in clients.enumerated() { #expect(client.roundTrip("in \(index)")) }
        for attempt in 0..<3 {
            let over = try TestClient(port: served.port)
            #expect(over.ending() == .endOfFile, "connection over the limit, attempt \(attempt)")
        }
        clients[0].close()
        #expect(waitUntil { served.listener.loads.reduce(0, +) == 3 })
        let next = try TestClient(port: served.port)
        #expect(next.roundTrip("a place freed"))
        for client in clients + [next] { client.close() }
        try served.stop()
    }
}

/// The names of this process's threads (`/proc/self/task/*/comm`).
func threadNames() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap { task in
        (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
