import Selectors
import Syscalls

/// Several event loops, each on a thread of its own: one process on every
/// core.
///
/// Each loop is an ordinary single-threaded `EventLoop`, unchanged: nothing
/// on its hot path is shared with the others, and nothing in it takes a lock.
/// The loops are created on their own threads, and `setUp` runs there, before
/// any of them runs: whatever a loop serves (a listener, a server, a signal
/// source) is made on the thread that will run it.
///
/// ```swift
/// let listener = try GroupListener(host: "127.0.0.1", port: 8000, loops: 2, balance: .reusePort)
/// let group = try LoopGroup(loops: 2, selector: { try EpollSelector<Int>() }) { index, loop in
///     _ = try TCPListener(loop: loop, group: listener, member: index) { fd in
///         _ = try? TCPConnection(loop: loop, fileDescriptor: fd, handler: handler)
///     }
/// }
/// group.stop()   // from any thread
/// try group.join()
/// ```
///
/// A complete, compiled example: `Snippets/GroupEchoServer.swift`
/// (`swift run GroupEchoServer`).
///
/// A `LoopGroup` is `Sendable`: any thread may stop it, reach a loop through
/// its handle, or join it. The loops themselves stay on their threads.
public final class LoopGroup<S: Selector & SendableMetatype>: Sendable where S.Data == Int {
    /// One handle per loop, in loop order: run work on that loop, or stop it.
    public let handles: [EventLoopHandle]
    private let threads: [SystemThread]
    private let state: Condition<GroupState>

    /// The number of CPUs this process may run on (its affinity mask, which
    /// `taskset` sets), at least 1: the default number of loops.
    public static var defaultLoopCount: Int { system_affinity_cpu_count() }

    /// Starts `loops` loops, each on its own thread (named `name-K`), and
    /// returns once all of them are set up and running.
    ///
    /// - Parameters:
    ///   - loops: how many loops; at least 1. More loops than CPUs works (the
    ///     threads share the CPUs), but gains nothing.
    ///   - name: the threads' name prefix, as `top -H` shows it.
    ///   - readBufferSize: each loop's read buffer (see `EventLoop.init`).
    ///   - options: each loop's metrics and diagnostics (see `LoopOptions`).
    ///   - selector: makes each loop's selector, on that loop's thread.
    ///   - setUp: runs on each loop's thread, with the loop's index (0 to
    ///     `loops - 1`) and the loop, before any loop runs. The set-ups run at
    ///     the same time on their threads: what they share must be `Sendable`.
    /// - Throws: the first error (in loop order) of a `selector` or a `setUp`
    ///   that failed; then no loop has run, and every thread has ended.
    public convenience init(
        loops: Int = LoopGroup.defaultLoopCount,
        name: String = "loop",
        readBufferSize: Int = 64 * 1024,
        options: LoopOptions = LoopOptions(),
        selector: @escaping @Sendable () throws -> S,
        setUp: @escaping @Sendable (_ index: Int, _ loop: EventLoop<S>) throws -> Void
    ) throws {
        try self.init(
            loops: loops, name: name, readBufferSize: readBufferSize, optionsForLoop: { _ in options },
            selector: selector, setUp: setUp)
    }

    /// Starts `loops` loops as `init(loops:name:readBufferSize:options:selector:setUp:)`
    /// does, each with options of its own: `optionsForLoop(K)` for loop K
    /// (for example, diagnostics that name the loop in their reports).
    public init(
        loops: Int = LoopGroup.defaultLoopCount,
        name: String = "loop",
        readBufferSize: Int = 64 * 1024,
        optionsForLoop: @escaping @Sendable (_ index: Int) -> LoopOptions,
        selector: @escaping @Sendable () throws -> S,
        setUp: @escaping @Sendable (_ index: Int, _ loop: EventLoop<S>) throws -> Void
    ) throws {
        precondition(loops >= 1, "a LoopGroup needs at least one loop")
        let state = Condition(GroupState(ready: Array(repeating: nil, count: loops)))
        var threads: [SystemThread] = []
        for index in 0..<loops {
            let started = system_thread_start(name: "\(name)-\(index)") {
                runGroupLoop(index, state, readBufferSize, optionsForLoop(index), selector, setUp)
            }
            switch started {
            case .success(let thread): threads.append(thread)
            case .failure(let errno):
                // The threads already started end without running their loops.
                state.update { shared in
                    shared.verdict = false
                    for later in index..<loops { shared.ready[later] = .failure(SelectorError.system(errno)) }
                }
                for thread in threads { system_thread_join(thread) }
                throw SelectorError.system(errno)
            }
        }
        self.threads = threads
        self.state = state
        // Wait for every set-up, then let the loops run, or end them all.
        let outcome = state.wait(until: { !$0.ready.contains { $0 == nil } }) { shared in
            let failure = shared.ready.lazy.compactMap { result -> (any Error)? in
                if case .failure(let error) = result { return error }
                return nil
            }.first
            shared.verdict = failure == nil
            return (failure, shared.ready.compactMap { try? $0?.get() })
        }
        if let failure = outcome.0 {
            for thread in threads { system_thread_join(thread) }
            state.update { $0.joined = true }
            handles = []
            throw failure
        }
        handles = outcome.1
    }

    /// The number of loops.
    public var count: Int { handles.count }

    /// Asks every loop to stop after its current iteration (see
    /// `EventLoopHandle.stop()`): a hard stop. For a graceful one, send each
    /// loop its shutdown with `execute(_:)` and let it stop itself. Safe from
    /// any thread.
    public func stop() {
        for handle in handles { handle.stop() }
    }

    /// Runs `body` on every loop (each on its own thread, during its next
    /// iteration), with the loop's index. Safe from any thread.
    public func execute(_ body: @escaping @Sendable (_ index: Int, _ loop: any EventLoopContext) -> Void) {
        for (index, handle) in handles.enumerated() {
            handle.execute { loop in body(index, loop) }
        }
    }

    /// Waits, without blocking a thread, until every loop's `run()` has
    /// returned (their threads are about to end; `join()` then returns at
    /// once). For async code: a `Service`'s `run()`, for example.
    public func stopped() async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let now = state.update { shared -> Bool in
                if shared.stopped == shared.ready.count { return true }
                shared.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Waits until every loop has stopped and its thread has ended. Call it
    /// once, from a thread that is not one of the loops'.
    ///
    /// - Throws: the first error (in loop order) that a loop's `run()`
    ///   threw; the other loops were stopped when it did.
    public func join() throws {
        let first = state.update { shared -> Bool in
            defer { shared.joined = true }
            return !shared.joined
        }
        if first { for thread in threads { system_thread_join(thread) } }
        let failure = state.update { $0.failures.min { $0.index < $1.index }?.error }
        if let failure { throw failure }
    }
}

/// The body of loop `index`'s thread.
private func runGroupLoop<S: Selector>(
    _ index: Int,
    _ state: Condition<GroupState>,
    _ readBufferSize: Int,
    _ options: LoopOptions,
    _ selector: () throws -> S,
    _ setUp: (Int, EventLoop<S>) throws -> Void
) where S.Data == Int {
    // However this thread ends, it counts as stopped for `stopped()`.
    defer {
        let waiters = state.update { shared -> [UnsafeContinuation<Void, Never>] in
            shared.stopped += 1
            guard shared.stopped == shared.ready.count else { return [] }
            defer { shared.waiters.removeAll() }
            return shared.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
    let loop: EventLoop<S>
    do {
        loop = try EventLoop(selector: try selector(), readBufferSize: readBufferSize, options: options)
        try setUp(index, loop)
    } catch {
        state.update { $0.ready[index] = .failure(error) }
        return
    }
    state.update { $0.ready[index] = .success(loop.handle) }
    guard state.wait(until: { $0.verdict != nil }, then: { $0.verdict! }) else { return }
    do {
        // Called from this generic function, `run()` would be its generic
        // entry, which looks up the selector's metadata on every wake-up:
        // for the default backend, call the pre-specialised one.
        if let epoll = loop as? EventLoop<EpollSelector<Int>> { try epoll.run() } else { try loop.run() }
    } catch {
        // One loop failing stops the group: a group with a dead loop would
        // keep its share of the connections waiting.
        let handles = state.update { shared -> [EventLoopHandle] in
            shared.failures.append((index, error))
            return shared.ready.compactMap { try? $0?.get() }
        }
        for handle in handles { handle.stop() }
    }
}

/// What the loops' threads and the group share, behind `state`.
struct GroupState {
    /// Each loop's set-up outcome: its handle, or why it failed.
    var ready: [Result<EventLoopHandle, any Error>?]
    /// Whether the loops may run (all were set up) or must end (one was not).
    var verdict: Bool?
    /// Each loop's error from `run()`, once its thread ends.
    var failures: [(index: Int, error: any Error)] = []
    /// Whether `join()` has joined the threads.
    var joined = false
    /// How many loops' `run()` has returned (or never ran).
    var stopped = 0
    /// `stopped()` calls waiting for the last loop.
    var waiters: [UnsafeContinuation<Void, Never>] = []
}
