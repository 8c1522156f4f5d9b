import CEpollShim
import Selectors
import SystemPackage
import Syscalls

/// Delivers signals (SIGINT, SIGTERM, SIGHUP, ...) to an event loop as
/// ordinary events, through the self-pipe trick: the signal handler only
/// writes the signal's number to a pipe; the loop reads it and calls your
/// handler on its own thread, where anything may be done.
///
/// ```swift
/// let signals = try SignalSource(loop: loop, signals: [SIGINT, SIGTERM]) { signal in
///     print("stopping on signal \(signal)")
///     loop.stop()
/// }
/// ```
///
/// One process has one set of signal handlers: create one `SignalSource`
/// per process. `close()` restores the default actions.
public final class SignalSource: EventSource {
    private unowned let loop: any EventLoopContext
    private let readEnd: CInt
    private let writeEnd: CInt
    private let signals: [CInt]
    private let handler: (CInt) -> Void
    private var id: SourceID?

    /// Starts forwarding `signals` to `handler`, on `loop`'s thread.
    ///
    /// - Throws: `SelectorError.system` if the pipe cannot be made or a
    ///   handler cannot be installed (for example for SIGKILL).
    public init(loop: any EventLoopContext, signals: [CInt], handler: @escaping (CInt) -> Void)
        throws(SelectorError)
    {
        self.loop = loop
        self.signals = signals
        self.handler = handler
        switch system_pipe2(O_NONBLOCK | O_CLOEXEC) {
        case .success(let ends): (readEnd, writeEnd) = ends
        case .failure(let errno): throw .system(errno)
        }
        do {
            id = try loop.register(self, fileDescriptor: FileDescriptor(rawValue: readEnd), interest: .read)
            if case .failure(let errno) = system_unblock_signals(signals) { throw SelectorError.system(errno) }
            for signal in signals {
                if case .failure(let errno) = system_signal_forward(signal, to: writeEnd) {
                    throw SelectorError.system(errno)
                }
            }
        } catch {
            close()
            throw error as! SelectorError
        }
    }

    /// Reads the pending signal numbers and calls the handler once for each.
    public func handle(_ ready: Interest) {
        var bytes = (UInt64(0), UInt64(0))  // 16 signals per read is plenty
        while true {
            let result = withUnsafeMutableBytes(of: &bytes) { raw in
                system_read(readEnd, raw).map { count in (0..<count).map { CInt(raw[$0]) } }
            }
            guard case .success(let received) = result, !received.isEmpty else { return }
            for signal in received { handler(signal) }
        }
    }

    /// Restores the default actions and closes the pipe; later calls do nothing.
    public func close() {
        guard let id else { return }
        for signal in signals { _ = system_signal_default(signal) }
        loop.unregister(id)
        _ = system_close(readEnd)
        _ = system_close(writeEnd)
        self.id = nil
    }
}
