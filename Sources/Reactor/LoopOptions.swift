import Syscalls

/// How an `EventLoop` watches itself: metrics for operators, diagnostics
/// for developers. Neither costs anything when off but one branch per
/// iteration.
public struct LoopOptions: Sendable {
    /// Keep `LoopMetrics`, readable from any thread through
    /// `EventLoopHandle.metrics`. Off by default.
    public var metrics: Bool
    /// The checks the loop makes on itself and on its handlers.
    public var diagnostics: LoopDiagnostics

    /// Options for a loop.
    ///
    /// - Parameters:
    ///   - metrics: whether to keep `LoopMetrics`.
    ///   - diagnostics: the checks to make; by default on in debug builds
    ///     and off in release builds (`LoopDiagnostics.buildDefault`).
    public init(metrics: Bool = false, diagnostics: LoopDiagnostics = .buildDefault) {
        self.metrics = metrics
        self.diagnostics = diagnostics
    }
}

/// The checks an `EventLoop` makes on itself, each reported once through
/// `report` rather than left for a user to notice:
///
/// - **slow handler**: an I/O handler, timer or job that ran longer than
///   `slowHandlerThreshold` (every handler stalls every other connection of
///   its loop while it runs);
/// - **busy loop**: a descriptor reported ready in `busyLoopThreshold`
///   iterations in a row whose handler never moved a byte: a level-triggered
///   descriptor nobody drains, write interest left on with nothing to
///   write, or a descriptor closed without being unregistered while its file
///   lives on in another descriptor (the kernel goes on reporting it). Each
///   registration is reported at most once, and at most one busy-loop
///   report a second leaves a loop, so a bug repeated on many descriptors
///   does not flood the log.
///
/// The third check, the selector's table against the kernel's own list,
/// is `EpollSelector.audit()` (`EventLoop.auditSelector()` on a loop).
///
/// Timing handlers costs one clock reading per event; the busy-loop check
/// costs four system calls for each descriptor ready in two iterations in
/// a row, and none for the others.
public struct LoopDiagnostics: Sendable {
    /// Report a handler, timer or job that runs longer than this; `nil`
    /// turns the check off.
    public var slowHandlerThreshold: Duration?
    /// Report a descriptor after this many wake-ups in a row without
    /// progress; `nil` turns the check off.
    public var busyLoopThreshold: Int?
    /// Where reports go; by default, one line each on standard error.
    /// Called on the loop's thread: it must not block.
    public var report: @Sendable (LoopDiagnostic) -> Void

    /// Diagnostics with the given checks.
    ///
    /// - Parameters:
    ///   - slowHandlerThreshold: see `slowHandlerThreshold`; 100 ms by default.
    ///   - busyLoopThreshold: see `busyLoopThreshold`; 64 wake-ups by default.
    ///   - report: see `report`.
    public init(
        slowHandlerThreshold: Duration? = .milliseconds(100),
        busyLoopThreshold: Int? = 64,
        report: @escaping @Sendable (LoopDiagnostic) -> Void = LoopDiagnostics.writeToStandardError
    ) {
        self.slowHandlerThreshold = slowHandlerThreshold
        self.busyLoopThreshold = busyLoopThreshold.map { max($0, 1) }
        self.report = report
    }

    /// Every check on, with its default threshold.
    public static var enabled: LoopDiagnostics { LoopDiagnostics() }

    /// Every check off.
    public static var disabled: LoopDiagnostics {
        LoopDiagnostics(slowHandlerThreshold: nil, busyLoopThreshold: nil)
    }

    /// `enabled` in debug builds, `disabled` in release builds.
    public static var buildDefault: LoopDiagnostics {
        #if DEBUG
            return .enabled
        #else
            return .disabled
        #endif
    }

    /// Whether any check is on.
    var isEnabled: Bool { slowHandlerThreshold != nil || busyLoopThreshold != nil }

    /// Writes `diagnostic` to standard error as one line, `reactor: ` first.
    @Sendable public static func writeToStandardError(_ diagnostic: LoopDiagnostic) {
        system_write_stderr("reactor: \(diagnostic)\n")
    }
}

/// What a loop's diagnostics found. See `LoopDiagnostics`.
public enum LoopDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// An I/O handler, timer or job ran for `duration`, above the threshold.
    /// `source` names it: the source's type and descriptor, `timer`, or the
    /// file and line that enqueued the job.
    case slowHandler(source: String, duration: Duration)
    /// The source on `fileDescriptor` was woken `wakeups` times in a row
    /// and moved no byte (`reason` says what was seen).
    case busyLoop(source: String, fileDescriptor: CInt, wakeups: Int, reason: BusyLoopReason)

    /// One line for a log.
    public var description: String {
        switch self {
        case .slowHandler(let source, let duration):
            let milliseconds = Double(nanoseconds(duration)) / 1e6
            let shown = (milliseconds * 10).rounded() / 10
            return "slow handler: \(source) ran for \(shown) ms, and every other source of its loop waited"
        case .busyLoop(let source, let fileDescriptor, let wakeups, let reason):
            return
                "busy loop: descriptor \(fileDescriptor) (\(source)) woke the loop \(wakeups) times in a row, \(reason)"
        }
    }
}

/// Why a descriptor was reported as keeping its loop busy.
public enum BusyLoopReason: Sendable, Equatable, CustomStringConvertible {
    /// Ready each time, and its handler neither read nor wrote a byte: the
    /// bytes waiting (`unread`) stayed where they were. Level-triggered
    /// readiness that nobody drains, or write interest with nothing to write.
    case noProgress(unread: Int)
    /// Its descriptor number is closed, yet the kernel still reports it:
    /// it was closed without being unregistered, and its file is still open
    /// through another descriptor.
    case closedWhileRegistered

    /// What was seen, for the report's line.
    public var description: String {
        switch self {
        case .noProgress(let unread):
            return "and its handler moved no byte (\(unread) bytes left unread): drain it, or stop watching it"
        case .closedWhileRegistered:
            return
                "though it is closed: it was closed without being unregistered, and another descriptor keeps its file open"
        }
    }
}
