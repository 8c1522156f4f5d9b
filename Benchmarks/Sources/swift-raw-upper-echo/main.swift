// The C peer's loop, line for line, in Swift: raw epoll, recv and send, no
// Selector, EventLoop or TCPConnection. A diagnostic peer: beside
// c-upper-echo and upper-echo it tells whether a gap between them follows
// the language and its runtime or the library's layers (BENCHMARKS.md, 2).
//
// It serves the benchmark's load and nothing more: a send the kernel does not
// take whole closes the connection (with pipelines of 16 x 64 B it never
// happens; upper-echo and the C peer queue the tail instead).
import CRawPeer
import Glibc
import UpperEcho

let requestedPort = CommandLine.arguments.count > 1 ? UInt16(CommandLine.arguments[1]) ?? 8000 : 8000
signal(SIGPIPE, SIG_IGN)
let socketType = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
let server = socket(AF_INET, socketType, 0)
var one: Int32 = 1
setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
var address = sockaddr_in()
address.sin_family = sa_family_t(AF_INET)
address.sin_addr.s_addr = inet_addr("127.0.0.1")
address.sin_port = requestedPort.bigEndian
var length = socklen_t(MemoryLayout<sockaddr_in>.size)
let bound = withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(server, $0, length) == 0 && listen(server, 511) == 0 && getsockname(server, $0, &length) == 0
    }
}
guard bound else {
    print("cannot listen on 127.0.0.1:\(requestedPort): errno \(errno)")
    exit(1)
}
print("listening on 127.0.0.1:\(UInt16(bigEndian: address.sin_port)) (swift-raw-epoll)")
fflush(nil)

let epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
func watch(_ fd: Int32) {
    var event = epoll_event()
    event.events = EPOLLIN.rawValue
    event.data.fd = fd
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event)
}
func drop(_ fd: Int32) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
    close(fd)
}
watch(server)
let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: 1024)
while true {
    let count = epoll_wait(epfd, events, 1024, -1)
    for index in 0..<max(0, Int(count)) {
        let fd = events[index].data.fd
        if fd == server {
            for _ in 0..<64 {
                let client = raw_peer_accept4(server, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                if client < 0 { break }
                setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                watch(client)
            }
            continue
        }
        let received = recv(fd, buffer.baseAddress, buffer.count, 0)
        if received == 0 || (received < 0 && errno != EAGAIN) {
            drop(fd)
            continue
        }
        if received < 0 { continue }
        Uppercase.apply(UnsafeMutableRawBufferPointer(rebasing: buffer[..<received]))
        if send(fd, buffer.baseAddress, received, Int32(MSG_NOSIGNAL)) != received { drop(fd) }
    }
}
