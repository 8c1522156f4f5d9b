import Reactor
import Selectors
import ServiceLifecycle

/// A `LoopGroup` as a swift-service-lifecycle `Service`, so that a
/// `ServiceGroup` runs it beside the program's other services: `run()`
/// returns when every loop has stopped; the group's graceful shutdown calls
/// `onGracefulShutdown` (a drain, which stops the loops when it is done);
/// cancelling the task stops every loop at once.
///
/// ```swift
/// let loops = try LoopGroup(loops: 2, selector: { try EpollSelector<Int>() }) { index, loop in ... }
/// let service = LoopGroupService(group: loops) {
///     loops.execute { _, loop in /* begin each loop's drain */ }
/// }
/// try await ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
///
/// Its own small module, so that `Reactor` depends on no lifecycle library.
public struct LoopGroupService<S: Selector & SendableMetatype>: Service where S.Data == Int {
    /// The loops it runs.
    public let group: LoopGroup<S>
    private let onGracefulShutdown: @Sendable () -> Void

    /// A service for `group`, whose loops already run.
    ///
    /// - Parameters:
    ///   - group: the loops.
    ///   - onGracefulShutdown: called (on any thread) when the service group
    ///     shuts down gracefully; by default it stops every loop
    ///     (`LoopGroup.stop()`). A drain sends each loop its shutdown with
    ///     `LoopGroup.execute(_:)` and lets the loops stop themselves.
    public init(group: LoopGroup<S>, onGracefulShutdown: (@Sendable () -> Void)? = nil) {
        self.group = group
        self.onGracefulShutdown = onGracefulShutdown ?? { [group] in group.stop() }
    }

    /// Runs until every loop has stopped.
    ///
    /// - Throws: the first error a loop's `run()` threw.
    public func run() async throws {
        let group = self.group
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await group.stopped()
            } onGracefulShutdown: { [onGracefulShutdown] in
                onGracefulShutdown()
            }
        } onCancel: {
            group.stop()
        }
        try group.join()
    }
}
