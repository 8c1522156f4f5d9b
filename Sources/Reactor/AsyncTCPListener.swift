import Selectors
import SystemPackage
import Syscalls

/// A TCP listener for async code on a loop: accepted connections come as
/// `AsyncTCPConnection`s, from `accept()`, the `connections` sequence, or
/// `serve(_:)`, which gives each connection a task of its own on the loop.
///
/// ```swift
/// let listener = try AsyncTCPListener(loop: loop, host: "127.0.0.1", port: 8000)
/// loop.handle.task {
///     try await listener.serve { connection in
///         while let reply = try? await connection.read({ Array($0) }) {
///             try? await connection.write(reply)
///         }
///         connection.close()
///     }
/// }
/// try loop.run()
/// ```
///
/// It accepts with a `TCPListener` (its options: backlog, accepts per
/// wake-up, the back-off when descriptors run out, `maxConnections`), and
/// holds the accepted descriptors until they are taken.
///
/// Every method must be called on the loop's thread, from a task that runs
/// there. A plain `Task {}` created inside a connection's task does not
/// inherit the loop's executor (it runs on the global pool); start such
/// tasks with `EventLoopHandle.task(_:)`.
public final class AsyncTCPListener: ParkingPlace, @unchecked Sendable {
    private unowned let loop: any EventLoopContext
    private var listener: TCPListener!
    private let connectionOptions: TCPConnection.Options
    private var pending: [FileDescriptor] = []
    private var pendingStart = 0
    private var waiter = Parked()
    private var nextPark: UInt64 = 1
    private var stopped = false

    /// Whether `close()` was called.
    public private(set) var isClosed = false

    /// Connections accepted that the loop could not watch (select's
    /// descriptor 1024), closed at once and never returned by `accept()`.
    public private(set) var unwatchableCount = 0

    /// Called on the loop's thread with why an accepted connection could
    /// not be watched (and was closed).
    public var onUnwatchable: ((SelectorError) -> Void)?

    /// The address and port it listens on (the port the kernel picked, for 0).
    public var localAddress: Endpoint { listener.localAddress }

    /// The listening socket's counts: accepted, refused, open.
    public var tcpListener: TCPListener { listener }

    /// Binds, listens and starts accepting on `loop`.
    ///
    /// - Parameters:
    ///   - loop: the loop; the listener holds it `unowned`.
    ///   - host: a numeric IPv4 or IPv6 address.
    ///   - port: the port; 0 picks a free one.
    ///   - options: the listening socket's options (see `TCPListener.Options`).
    ///   - connectionOptions: each connection's water marks.
    /// - Throws: `SocketError` for a bad address or a port in use.
    public init(
        loop: any EventLoopContext, host: String, port: UInt16, options: TCPListener.Options = .init(),
        connectionOptions: TCPConnection.Options = .init()
    ) throws(SocketError) {
        self.loop = loop
        self.connectionOptions = connectionOptions
        listener = try TCPListener(loop: loop, host: host, port: port, options: options) { [unowned self] fd in
            self.accepted(fd)
        }
        loop.handle.jobs.onStop[ObjectIdentifier(self)] = { [unowned self] in
            self.stopped = true
            self.waiter.resume(.failed(.loopStopped))
        }
    }

    /// Serves loop `member`'s part of `group` (see
    /// `TCPListener.init(loop:group:member:onAccept:)`), on `loop`.
    public init(
        loop: any EventLoopContext, group: GroupListener, member: Int,
        connectionOptions: TCPConnection.Options = .init()
    ) throws(SocketError) {
        self.loop = loop
        self.connectionOptions = connectionOptions
        listener = try TCPListener(loop: loop, group: group, member: member) { [unowned self] fd in
            self.accepted(fd)
        }
        loop.handle.jobs.onStop[ObjectIdentifier(self)] = { [unowned self] in
            self.stopped = true
            self.waiter.resume(.failed(.loopStopped))
        }
    }

    deinit {
        for fd in pending[pendingStart...] { _ = system_close(fd.rawValue) }
    }

    /// The next connection, waiting for one if none is queued; `nil` once
    /// the listener is closed.
    ///
    /// - Throws: `.cancelled`, `.loopStopped`.
    nonisolated(nonsending) public func accept() async throws(AsyncTCPError) -> AsyncTCPConnection? {
        loop.checkThread("AsyncTCPListener.accept")
        while true {
            if pendingStart < pending.count {
                let fd = pending[pendingStart]
                pendingStart += 1
                if pendingStart == pending.count {
                    pending.removeAll(keepingCapacity: true)
                    pendingStart = 0
                }
                let listener = self.listener!
                do {
                    return try AsyncTCPConnection(
                        loop: loop, fileDescriptor: fd, options: connectionOptions,
                        onClose: { [weak listener] in listener?.connectionDidClose() })
                } catch {
                    // Closed already (select's descriptor 1024 ends here): the next one.
                    unwatchableCount += 1
                    listener.connectionDidClose()
                    onUnwatchable?(error)
                    continue
                }
            }
            if isClosed { return nil }
            if stopped { throw .loopStopped }
            if Task.isCancelled { throw .cancelled }
            let number = nextPark
            nextPark &+= 1
            let wake = await parkOnLoop(loop.handle, self, slot: 0, number: number) {
                self.waiter = Parked(continuation: $0, number: number)
            }
            if case .failed(let error) = wake { throw error }
        }
    }

    /// The accepted connections, in order; it ends when the listener closes.
    public var connections: Connections { Connections(listener: self) }

    /// The accepted connections as an `AsyncSequence`.
    public struct Connections: AsyncSequence, Sendable {
        /// One connection.
        public typealias Element = AsyncTCPConnection
        /// What `next` throws.
        public typealias Failure = AsyncTCPError
        let listener: AsyncTCPListener

        /// An iterator over the connections.
        public func makeAsyncIterator() -> Iterator { Iterator(listener: listener) }

        /// Takes connections from the listener, one `accept()` each.
        public struct Iterator: AsyncIteratorProtocol {
            let listener: AsyncTCPListener

            /// The next connection; `nil` once the listener is closed.
            public mutating func next(isolation actor: isolated (any Actor)? = #isolation) async throws(AsyncTCPError)
                -> AsyncTCPConnection?
            {
                try await listener.accept()
            }

            /// The next connection; `nil` once the listener is closed.
            public mutating func next() async throws(AsyncTCPError) -> AsyncTCPConnection? {
                try await listener.accept()
            }
        }
    }

    /// Runs `handler` for each connection, each in a task of its own that
    /// prefers the loop's task executor (so it runs on the loop's thread,
    /// and no resume goes through the global pool), until the listener is
    /// closed; then waits for the connections' tasks to end. Call it from a
    /// task on the loop (`EventLoopHandle.task(_:)`).
    ///
    /// - Throws: `.cancelled` when the calling task is cancelled (its
    ///   connections' tasks are cancelled too), `.loopStopped`.
    public func serve(_ handler: @escaping @Sendable (AsyncTCPConnection) async -> Void) async throws(AsyncTCPError) {
        let executor = loop.handle.taskExecutor
        let outcome: Result<Void, AsyncTCPError> = await withTaskExecutorPreference(executor) {
            await withDiscardingTaskGroup { group in
                do throws(AsyncTCPError) {
                    while let connection = try await accept() {
                        group.addTask(executorPreference: executor) {
                            await connection.withCancellationScope { await handler(connection) }
                        }
                    }
                    return .success(())
                } catch {
                    group.cancelAll()
                    return .failure(error)
                }
            }
        }
        try outcome.get()
    }

    /// Stops accepting and closes the listening socket; connections not yet
    /// taken are closed, and a waiting `accept()` returns `nil`. Connections
    /// already taken stay open.
    public func close() {
        loop.checkThread("AsyncTCPListener.close")
        guard !isClosed else { return }
        isClosed = true
        listener.close()
        loop.handle.jobs.onStop[ObjectIdentifier(self)] = nil
        for fd in pending[pendingStart...] {
            _ = system_close(fd.rawValue)
            listener.connectionDidClose()
        }
        pending.removeAll()
        pendingStart = 0
        waiter.resume(.ready)
    }

    /// Resumes a waiting `accept()` with `.cancelled`, if it is park `number`.
    func cancelPark(_ slot: Int, _ number: UInt64) {
        if waiter.number == number { waiter.resume(.failed(.cancelled)) }
    }

    /// The listener accepted `fd`: queued for the next `accept()`.
    private func accepted(_ fd: FileDescriptor) {
        pending.append(fd)
        waiter.resume(.ready)
    }
}
