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
/// Each signal is forwarded to one source: several sources (on several
/// loops) may share out the signals, and a source created for a signal
/// another one forwards takes it over. `close()` restores the default action
/// of each of its signals that it still forwards.
public final class SignalSource: EventSource {
    private unowned let loop: any EventLoopContext
    private let readEnd: CInt
    private let writeEnd: CInt
    private let signals: [CInt]
    private let handler: (CInt) -> Void
    private var id: SourceID?
    private var isOpen = true

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
        switch system_pipe2(OpenFlags.nonBlocking | OpenFlags.closeOnExec) {
        case .success(let ends): (readEnd, writeEnd) = ends
        case .failure(let errno): throw .system(errno)
        }
        super.init()
        do {
            id = try loop.register(self, fileDescriptor: FileDescriptor(rawValue: readEnd), interest: .read)
            if case .failure(let errno) = system_pthread_sigmask_unblock(signals) { throw SelectorError.system(errno) }
            for signal in signals {
                if case .failure(let errno) = system_sigaction_forward(signal, to: writeEnd) {
                    throw SelectorError.system(errno)
                }
            }
        } catch {
            close()
            throw error as! SelectorError
        }
    }

    /// Reads the pending signal numbers and calls the handler once for each.
    public override func handle(_ ready: Interest) {
        var bytes = (UInt64(0), UInt64(0))  // 16 signals per read is plenty
        while true {
            let result = withUnsafeMutableBytes(of: &bytes) { raw in
                system_read(readEnd, raw).map { count in (0..<count).map { CInt(raw[$0]) } }
            }
            guard case .success(let received) = result, !received.isEmpty else { return }
            for signal in received { handler(signal) }
        }
    }

    /// Restores the default actions (of the signals this source still
    /// forwards) and closes the pipe; later calls do nothing.
    public func close() {
        guard isOpen else { return }
        if let id { loop.unregister(id) }
        id = nil
        release()
    }

    deinit {
        // Not closed: the loop is gone (it held this source while registered).
        if isOpen { release() }
    }

    /// Gives back the signals this source still forwards, and the pipe.
    private func release() {
        isOpen = false
        for signal in signals { _ = system_sigaction_release(signal, from: writeEnd) }
        _ = system_close(readEnd)
        _ = system_close(writeEnd)
    }
}
