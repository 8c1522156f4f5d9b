// The standard streams: C `stdout` (which Swift's `print` writes to), its
// buffering and flushing, and unbuffered writes to standard error.
// @preconcurrency because glibc declares `stdout` as a mutable global, which
// Swift 6 rejects otherwise; Glibc for stdio, which CEpollShim does not include.
@preconcurrency import Glibc

/// Makes the C `stdout` stream flush at every newline even when it is a
/// pipe, so that a parent process reads each line as soon as it is printed.
/// The corresponding C function is `setvbuf(_IOLBF)`.
package func system_setvbuf_stdout_line_buffered() {
    _ = setvbuf(stdout, nil, _IOLBF, 0)
}

/// Flushes the C standard output buffer, so that a line printed with `print`
/// reaches a pipe at once. The corresponding C function is `fflush`.
package func system_fflush_stdout() {
    fflush(stdout)
}

/// Writes `text` to standard error, unbuffered, looping over short writes.
/// The corresponding C function is `write`.
package func system_write_stderr(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var rest = UnsafeRawBufferPointer(bytes)
        while !rest.isEmpty, case .success(let written) = system_write(2, rest), written > 0 {
            rest = UnsafeRawBufferPointer(rebasing: rest[written...])
        }
    }
}
