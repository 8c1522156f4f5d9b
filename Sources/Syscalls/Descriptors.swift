// Descriptors: closing, reading, writing and duplicating them, their flags
// (`fcntl`), pipes, opening files, and reading a small file whole. Every call
// goes through the policy of Retry.swift (EINTR retried except for `close`,
// errno typed).
import CEpollShim
import SystemPackage

/// Closes a descriptor, never retrying: on Linux the descriptor is released
/// even when `close` reports EINTR. The corresponding C function is `close`.
package func system_close(_ fd: CInt) -> Result<Void, Errno> {
    valueOrErrno(.close, retryOnInterrupt: false) { close(fd) }.map { _ in () }
}

/// `fcntl(fd, cmd)`. The corresponding C function is `fcntl`.
package func system_fcntl(_ fd: CInt, _ cmd: CInt) -> Result<CInt, Errno> {
    valueOrErrno(.fcntl) { cepoll_fcntl0(fd, cmd) }
}

/// `fcntl(fd, cmd, arg)`. The corresponding C function is `fcntl`.
package func system_fcntl(_ fd: CInt, _ cmd: CInt, _ arg: CInt) -> Result<CInt, Errno> {
    valueOrErrno(.fcntl) { cepoll_fcntl1(fd, cmd, arg) }
}

/// Reads up to `buffer.count` bytes. The corresponding C function is `read`.
package func system_read(_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer) -> Result<Int, Errno> {
    valueOrErrno(.read) { read(fd, buffer.baseAddress, buffer.count) }
}

/// Writes up to `buffer.count` bytes. The corresponding C function is `write`.
package func system_write(_ fd: CInt, _ buffer: UnsafeRawBufferPointer) -> Result<Int, Errno> {
    valueOrErrno(.write) { write(fd, buffer.baseAddress, buffer.count) }
}

/// Creates a pipe; `flags` are `OpenFlags.nonBlocking` and `.closeOnExec`.
/// The corresponding C function is `pipe2`.
package func system_pipe2(_ flags: CInt) -> Result<(read: CInt, write: CInt), Errno> {
    var fds: (CInt, CInt) = (-1, -1)
    return withUnsafeMutableBytes(of: &fds) { raw in
        let pointer = raw.baseAddress!.assumingMemoryBound(to: CInt.self)
        return valueOrErrno(.pipe2) { cepoll_pipe2(pointer, flags) }.map { _ in (pointer[0], pointer[1]) }
    }
}

/// Opens a file. The corresponding C function is `open`.
package func system_open(_ path: String, _ flags: CInt, _ mode: mode_t = 0o644) -> Result<CInt, Errno> {
    valueOrErrno(.open) { cepoll_open(path, flags, mode) }
}

/// Duplicates `fd` onto `target` with close-on-exec set.
/// The corresponding C function is `dup3`.
package func system_dup3(_ fd: CInt, _ target: CInt) -> Result<CInt, Errno> {
    valueOrErrno(.dup3) { cepoll_dup3(fd, target, O_CLOEXEC) }
}

/// The inode number of the file open at `fd`. The corresponding C
/// function is `fstat`.
package func system_inode(_ fd: CInt) -> Result<UInt64, Errno> {
    var inode: UInt64 = 0
    return valueOrErrno(.fstat) { cepoll_inode(fd, &inode) }.map { _ in inode }
}

/// The whole content of a small file such as `/proc/PID/stat`, or `nil`.
/// The corresponding C functions are `open`, `read` and `close`.
package func system_read_file(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
    guard case .success(let fd) = system_open(path, O_RDONLY | O_CLOEXEC) else { return nil }
    defer { _ = system_close(fd) }
    var content: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while content.count < limit {
        guard case .success(let count) = chunk.withUnsafeMutableBytes({ system_read(fd, $0) }) else { return nil }
        if count == 0 { break }
        content += chunk[..<count]
    }
    return content
}

/// The `O_*` flags of `system_open` and `system_pipe2`.
package enum OpenFlags {
    /// `O_WRONLY`: open for writing only.
    package static var writeOnly: CInt { O_WRONLY }
    /// `O_CREAT`: create the file if it does not exist.
    package static var create: CInt { O_CREAT }
    /// `O_TRUNC`: empty the file if it exists.
    package static var truncate: CInt { O_TRUNC }
    /// `O_NONBLOCK`: calls that would wait fail with `EAGAIN` instead.
    package static var nonBlocking: CInt { O_NONBLOCK }
    /// `O_CLOEXEC`: the descriptor is closed in programs the process starts.
    package static var closeOnExec: CInt { O_CLOEXEC }
}
