// Errors, the standard error stream, files and number formatting, without
// Foundation: every write goes through Syscalls.
import Selectors
import SystemPackage
import Syscalls

/// Why the benchmark stopped. A wrong ready count or set is a correctness
/// failure of the code under test, never noise.
enum BenchError: Error, CustomStringConvertible {
    case system(String, Errno)
    case selector(String, SelectorError)
    case wrongReadyCount(String, Int, Int)
    case wrongReadySet(String, found: [CInt], expected: [CInt])

    var description: String {
        switch self {
        case .system(let what, let errno): "\(what) failed: \(errno)"
        case .selector(let what, let error): "\(what) failed: \(error)"
        case .wrongReadyCount(let what, let found, let expected):
            "\(what) returned \(found) ready descriptors, expected \(expected)"
        case .wrongReadySet(let what, let found, let expected):
            "\(what) returned descriptors \(found.prefix(20)), expected \(expected.prefix(20))"
        }
    }
}

/// Writes `text` to the standard error stream, unbuffered.
func standardError(_ text: String, newline: Bool = true) {
    writeAll(to: 2, newline ? text + "\n" : text)
}

/// Creates or truncates `path` and writes `text` to it.
func writeFile(_ path: String, _ text: String) throws(BenchError) {
    let flags = OpenFlags.writeOnly | OpenFlags.create | OpenFlags.truncate | OpenFlags.closeOnExec
    let fd: CInt
    switch system_open(path, flags, 0o644) {
    case .success(let opened): fd = opened
    case .failure(let errno): throw .system("open(\(path))", errno)
    }
    defer { _ = system_close(fd) }
    if let errno = writeAll(to: fd, text) { throw .system("write(\(path))", errno) }
}

/// Writes every byte of `text`, looping over short writes.
@discardableResult
private func writeAll(to fd: CInt, _ text: String) -> Errno? {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let result = bytes.withUnsafeBytes { system_write(fd, UnsafeRawBufferPointer(rebasing: $0[offset...])) }
        switch result {
        case .success(let written): offset += written
        case .failure(let errno): return errno
        }
    }
    return nil
}

/// `value` with `digits` decimals, rounded half away from zero.
func fixed(_ value: Double, digits: Int = 1) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int((abs(value) * scale).rounded())
    let whole = scaled / Int(scale)
    let fraction = String(scaled % Int(scale))
    let sign = value < 0 && scaled != 0 ? "-" : ""
    guard digits > 0 else { return "\(sign)\(whole)" }
    return "\(sign)\(whole).\(String(repeating: "0", count: digits - fraction.count))\(fraction)"
}
