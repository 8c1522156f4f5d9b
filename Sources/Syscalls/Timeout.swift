// The conversion of a Swift timeout to the milliseconds that the kernel's
// waits take (no libc call).
/// Why a timeout cannot be expressed as the kernel's `int` milliseconds.
package enum TimeoutConversionError: Error, Sendable, Equatable {
    /// More milliseconds than a C `int` holds (about 24.8 days); Python raises
    /// `OverflowError` here.
    case tooLarge
}

/// Converts a Swift timeout to the kernel's milliseconds the way CPython does:
/// `nil` or a negative duration waits forever (-1), `.zero` does not wait (0),
/// and anything else is rounded **up** to a whole millisecond, so that
/// 0.1 ms waits at least 1 ms rather than not at all.
package func milliseconds(roundingUp timeout: Duration?) -> Result<CInt, TimeoutConversionError> {
    guard let timeout else { return .success(-1) }
    if timeout == .zero { return .success(0) }  // the busy loop's case, without the arithmetic
    if timeout < .zero { return .success(-1) }
    let (seconds, attoseconds) = timeout.components
    let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
    let (wholeMs, overflow) = seconds.multipliedReportingOverflow(by: 1000)
    guard !overflow else { return .failure(.tooLarge) }
    let fractionMs = (attoseconds + attosecondsPerMillisecond - 1) / attosecondsPerMillisecond
    let (total, overflow2) = wholeMs.addingReportingOverflow(fractionMs)
    guard !overflow2, total <= Int64(CInt.max) else { return .failure(.tooLarge) }
    return .success(CInt(total))
}
