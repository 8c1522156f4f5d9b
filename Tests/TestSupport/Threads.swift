import Foundation
import Syscalls

/// The kernel's id of the calling thread (what `gettid` returns), read from
/// the `/proc/thread-self` link (`PID/task/TID`); `nil` if it cannot be read.
public func currentThreadID() -> pid_t? {
    guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self"),
        let last = target.split(separator: "/").last
    else { return nil }
    return pid_t(last)
}

/// Whether thread `thread` (a kernel thread id of this process) is asleep in
/// `epoll_wait`: its `/proc` `wchan`, the kernel function it sleeps in, names
/// epoll (`do_epoll_wait`). Where the kernel hides `wchan` (it reads `0`),
/// whether the thread is asleep at all (state `S` in its `stat`). A test that
/// must act on a loop or a poll that is really blocked waits for this,
/// instead of sleeping and hoping the other thread got there.
public func isBlockedInEpollWait(_ thread: pid_t) -> Bool {
    let base = "/proc/self/task/\(thread)/"
    if let bytes = system_read_file(base + "wchan") {
        let wchan = String(decoding: bytes, as: UTF8.self)
        if !wchan.isEmpty && wchan != "0" { return wchan.contains("epoll") }
    }
    guard let bytes = system_read_file(base + "stat") else { return false }
    let stat = String(decoding: bytes, as: UTF8.self)
    // After the parenthesised name: a space, then the state.
    guard let nameEnd = stat.lastIndex(of: ")") else { return false }
    return stat[nameEnd...].dropFirst(2).first == "S"
}
