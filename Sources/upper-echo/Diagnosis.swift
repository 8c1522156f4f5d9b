import Logging
import Reactor
import Selectors

/// `upper-echo --diagnose`: each loop's diagnostics (slow handlers, busy
/// loops; see `LoopDiagnostics`) on and reported through the logger, and
/// each epoll loop's table audited against the kernel's every second, each
/// new divergence logged once (a clean audit at the debug level).
///
/// Without the flag, a release build checks nothing and a debug build makes
/// the loop's default checks, reported through the logger all the same.
struct Diagnosis: Sendable {
    /// Whether `--diagnose` was given.
    let enabled: Bool
    let logger: Logger

    /// How often each loop's selector is audited.
    static let auditInterval: Duration = .seconds(1)

    /// The options for loop `index`, with `LoopMetrics` if `metrics`.
    func options(loop index: Int, metrics: Bool = false) -> LoopOptions {
        var diagnostics = enabled ? LoopDiagnostics.enabled : LoopDiagnostics.buildDefault
        let logger = logger
        diagnostics.report = { diagnostic in
            logger.warning("\(diagnostic)", metadata: ["loop": "\(index)"])
        }
        return LoopOptions(metrics: metrics, diagnostics: diagnostics)
    }

    /// With `--diagnose`, audits `loop`'s selector every second, on the
    /// loop, when it is an epoll loop; logs once that other backends have
    /// no audit.
    func startAudits<S: Selector>(on loop: EventLoop<S>, index: Int) where S.Data == Int {
        guard enabled else { return }
        guard let epoll = loop as? EventLoop<EpollSelector<Int>> else {
            if index == 0 { logger.notice("--diagnose: only the epoll backend can be audited against the kernel") }
            return
        }
        let logger = logger
        var known: [EpollAudit.Divergence] = []
        epoll.scheduleRepeating(every: Self.auditInterval) { [unowned epoll] in
            let audit: EpollAudit
            do { audit = try epoll.auditSelector() } catch {
                logger.warning("audit: cannot read the kernel's list: \(error)", metadata: ["loop": "\(index)"])
                return
            }
            if audit.isClean { logger.debug("audit: \(audit)", metadata: ["loop": "\(index)"]) }
            for divergence in audit.divergences where !known.contains(divergence) {
                logger.warning("audit: \(divergence)", metadata: ["loop": "\(index)"])
            }
            known = audit.divergences
        }
    }
}
