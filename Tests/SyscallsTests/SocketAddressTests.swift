// Parsing and printing of numeric socket addresses, and a round trip through
// the kernel.
import CEpollShim
import Syscalls
import Testing

@Suite("SocketAddress")
struct SocketAddressTests {
    @Test("127.0.0.1 parses as IPv4")
    func parsesIPv4() throws {
        let address = try #require(SocketAddress(host: "127.0.0.1", port: 8080))
        #expect(address.family == AF_INET)
        #expect(address.host == "127.0.0.1")
        #expect(address.port == 8080)
        #expect(address.description == "127.0.0.1:8080")
        address.withSockAddr { pointer, length in
            #expect(CInt(pointer.pointee.sa_family) == AF_INET)
            #expect(Int(length) == MemoryLayout<sockaddr_in>.size)
        }
    }

    @Test("::1 parses as IPv6 and prints in brackets: [::1]:80")
    func parsesIPv6() throws {
        let address = try #require(SocketAddress(host: "::1", port: 80))
        #expect(address.family == AF_INET6)
        #expect(address.host == "::1")
        #expect(address.port == 80)
        #expect(address.description == "[::1]:80")
        address.withSockAddr { _, length in #expect(Int(length) == MemoryLayout<sockaddr_in6>.size) }
    }

    @Test(
        "garbage, out-of-range octets and names are rejected (names are not resolved)",
        arguments: ["garbage", "", "256.0.0.1", "1.2.3", "localhost", "::g", "[::1]", "127.0.0.1:80"]
    )
    func rejects(host: String) {
        #expect(SocketAddress(host: host, port: 1) == nil)
    }

    @Test("the port is stored in network byte order")
    func networkByteOrder() throws {
        let address = try #require(SocketAddress(host: "10.0.0.1", port: 0x1234))
        address.withSockAddr { pointer, _ in
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                #expect(v4.pointee.sin_port == UInt16(0x1234).bigEndian)
            }
        }
    }

    @Test("bind to 127.0.0.1:0 and getsockname report the loopback host and a real port")
    func kernelRoundTrip() throws {
        let fd = try system_socket(AF_INET, CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)).get()
        defer { _ = system_close(fd) }
        try system_bind(fd, SocketAddress(host: "127.0.0.1", port: 0)!).get()
        let bound = try system_getsockname(fd).get()
        #expect(bound.family == AF_INET)
        #expect(bound.host == "127.0.0.1")
        #expect(bound.port != 0)
        #expect(bound.description == "127.0.0.1:\(bound.port)")
    }

    @Test("getaddrinfo: localhost is a loopback address, a numeric host is itself, the port is kept")
    func resolvesNames() throws {
        let local = try system_getaddrinfo("localhost", port: 8080).get()
        #expect(!local.isEmpty)
        #expect(local.allSatisfy { ["127.0.0.1", "::1"].contains($0.host) && $0.port == 8080 }, "\(local)")
        let v4 = try system_getaddrinfo("127.0.0.1", port: 1).get()
        #expect(v4.map(\.description) == ["127.0.0.1:1"])
        let v6 = try system_getaddrinfo("::1", port: 2).get()
        #expect(v6.map(\.description) == ["[::1]:2"])
    }

    @Test("getaddrinfo: a name that does not resolve is an error with the resolver's message")
    func unresolvableName() {
        guard case .failure(let error) = system_getaddrinfo("nosuch.invalid", port: 80) else {
            Issue.record("nosuch.invalid resolved")
            return
        }
        #expect(error.code != 0)
        #expect(!error.description.isEmpty)
    }
}
