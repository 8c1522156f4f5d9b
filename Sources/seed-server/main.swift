// seed-server: the echo server of the lesson "day34-2 多路复用之epoll"
// (summarized in the README), translated line by line from Python's `select.epoll`
// onto `Epoll`. Each step quotes, in a comment, the Python line it mirrors.
// The lesson's defects are fixed rather than copied; each fix says "FIX:".
//
// Usage: seed-server [PORT]
//
// It listens on 127.0.0.1:8000 with a backlog of 5, as the lesson does. The
// optional PORT argument is our addition so that tests can run it: it
// replaces 8000, and 0 lets the kernel pick a free port.
//
// Try it: `seed-server` in one terminal, `printf 'hello\n' | nc -q1 127.0.0.1 8000`
// in another: nc prints HELLO, the server prints each event and the data.
import LinuxEpoll
import SystemPackage
import Syscalls

let host = "127.0.0.1"

/// Prints `message` to stderr and ends the process with status 1.
func fail(_ message: String) -> Never {
    system_write_stderr("seed-server: \(message)\n")
    system_exit(1)
}

/// The port: 8000 as in the lesson, or the first command-line argument.
func portFromArguments() -> UInt16 {
    guard CommandLine.arguments.count > 1 else { return 8000 }
    guard let port = UInt16(CommandLine.arguments[1]) else { fail("usage: seed-server [PORT], PORT in 0...65535") }
    return port
}

/// `bytes.upper()`: only the ASCII letters a-z change; every other byte,
/// UTF-8 or not, is returned unchanged.
func upper(_ data: some Collection<UInt8>) -> [UInt8] {
    data.map { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) ? $0 - 0x20 : $0 }
}

/// Opens the listening socket, or ends the process with one line on stderr.
func openServer(port: UInt16) -> CInt {
    // server = socket()
    // SOCK_CLOEXEC: the socket does not leak into programs we might start.
    // SOCK_NONBLOCK: if a client resets between epoll's "ready" and our
    // accept, accept fails with EAGAIN instead of blocking the whole server.
    let flags = SocketType.stream | SocketType.nonBlocking | SocketType.closeOnExec
    guard case .success(let server) = system_socket(AddressFamily.ipv4, flags) else { fail("cannot create a socket") }
    // SO_REUSEADDR (not in the lesson): restart at once, without waiting for
    // the previous run's connections to leave TIME_WAIT.
    _ = system_setsockopt(server, .reuseAddress, 1)
    // server.bind(('127.0.0.1', 8000))
    // FIX: a port in use is one clear line and exit status 1, not a traceback.
    if case .failure(let errno) = system_bind(server, SocketAddress(host: host, port: port)!) {
        fail("cannot bind \(host):\(port): \(errno)")
    }
    // server.listen(5)
    if case .failure(let errno) = system_listen(server, 5) { fail("cannot listen: \(errno)") }
    return server
}

/// The lesson's event loop, with the state it keeps.
final class EchoServer {
    let server: CInt
    let epoll: Epoll
    /// fd_socket = {server.fileno(): server}  and  msgs = []
    /// FIX: one pending reply per client (the bytes not sent yet) instead of
    /// one global list that every writable event scans. Its keys are the
    /// connected clients, which is what fd_socket was for.
    var pending: [CInt: [UInt8]] = [:]

    init(server: CInt) throws(EpollError) {
        self.server = server
        // epoll = select.epoll()
        epoll = try Epoll()
        // epoll.register(server.fileno(), select.EPOLLIN)
        try epoll.register(server, events: .in)
    }

    func run() throws(EpollError) -> Never {
        // while True:
        while true {
            // for fd, event in epoll.poll():
            for event in try epoll.poll() {
                let fd = event.fileDescriptor.rawValue
                // print(fd, event)
                print(fd, event.events.rawValue)
                // if sock == server:
                if fd == server {
                    try acceptClient()
                } else if pending[fd] != nil {
                    try serve(fd, event.events)
                }
            }
        }
    }

    func acceptClient() throws(EpollError) {
        // client, addr = server.accept()
        // SOCK_NONBLOCK (the lesson's clients block): a recv or send that
        // would wait returns EAGAIN instead of stalling every other client.
        switch system_accept4(server, SocketType.nonBlocking | SocketType.closeOnExec) {
        case .failure(let errno):
            // FIX: a failed accept (client gone already, out of descriptors)
            // raised and ended the lesson's server; report it and go on.
            if errno != .resourceTemporarilyUnavailable { print("accept failed: \(errno)") }
        case .success(let client):
            // epoll.register(client.fileno(), select.EPOLLIN)
            try epoll.register(client, events: .in)
            // fd_socket[client.fileno()] = client
            pending[client] = []
        }
    }

    func serve(_ client: CInt, _ events: Epoll.Events) throws(EpollError) {
        // FIX: the lesson ignores EPOLLERR and EPOLLHUP (reported even when
        // not asked for): the connection is broken, nothing sent would arrive.
        if !events.isDisjoint(with: [.err, .hup]) {
            try closeClient(client)
        } else if events.contains(.in) {
            // elif event == select.EPOLLIN:
            // FIX: contains, not ==, which misses combinations such as IN|RDHUP.
            try receive(from: client)
        } else if events.contains(.out) {
            // elif event == select.EPOLLOUT:
            try sendPending(to: client)
        }
    }

    func receive(from client: CInt) throws(EpollError) {
        var buffer = [UInt8](repeating: 0, count: 1024)
        // data = sock.recv(1024)
        switch buffer.withUnsafeMutableBytes({ system_recv(client, $0) }) {
        case .failure(.resourceTemporarilyUnavailable):
            return  // a spurious wake-up: nothing to read after all
        case .failure(let errno):
            // FIX: an error such as ECONNRESET raised and ended the lesson's
            // server; it ends this client only.
            print("client \(client): \(errno)")
            try closeClient(client)
        case .success(0):
            // if not data:
            try closeClient(client)
        case .success(let count):
            // print(data.decode('utf8'))
            // FIX: invalid UTF-8 becomes U+FFFD instead of raising UnicodeDecodeError.
            print(String(decoding: buffer[..<count], as: UTF8.self))
            // epoll.modify(fd, select.EPOLLOUT)
            // While the reply is pending we stop reading from this client, so
            // a client that sends without reading costs at most 1024 bytes.
            try epoll.modify(client, events: .out)
            // msgs.append((sock, data.upper()))
            pending[client] = upper(buffer[..<count])
        }
    }

    func sendPending(to client: CInt) throws(EpollError) {
        // for item in msgs[:]:  if item[0] == sock:  sock.send(item[1]);  msgs.remove(item)
        // FIX: send may take only part of the reply; the lesson lost the rest.
        // We keep what was not sent and stay on EPOLLOUT until it is all gone.
        let reply = pending[client, default: []]
        switch reply.withUnsafeBytes({ system_send(client, $0) }) {
        case .failure(.resourceTemporarilyUnavailable):
            return  // a spurious wake-up: no room after all
        case .failure(let errno):
            // FIX: EPIPE or ECONNRESET (the client left without reading) ends this client only.
            print("client \(client): \(errno)")
            try closeClient(client)
        case .success(let count):
            pending[client] = Array(reply.dropFirst(count))
            // epoll.modify(fd, select.EPOLLIN)
            if count == reply.count { try epoll.modify(client, events: .in) }
        }
    }

    func closeClient(_ client: CInt) throws(EpollError) {
        // epoll.unregister(fd)
        try epoll.unregister(client)
        // socket.close()
        // FIX: the lesson calls close() on the class `socket` (a TypeError); close the client.
        _ = system_close(client)
        // del fd_socket[fd]
        pending[client] = nil
        // print("somebody ....")
        print("client \(client) left")
    }
}

// Print each line as it happens, even into a pipe, so that a test reading our
// output sees it at once.
system_setvbuf_stdout_line_buffered()
let server = openServer(port: portFromArguments())
// Not in the lesson; added for tests: the real port, which matters with port 0.
guard case .success(let address) = system_getsockname(server) else { fail("cannot read the bound address") }
print("listening on \(host):\(address.port)")
do {
    try EchoServer(server: server).run()
} catch {
    fail("epoll failed: \(error)")
}
