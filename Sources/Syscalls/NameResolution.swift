// Name resolution: a host name (or numeric address) and a port to the
// socket addresses a stream socket can bind or connect to. It blocks while
// it asks the resolver (/etc/hosts, DNS): call it at start-up, never on an
// event loop.
import CEpollShim
import SystemPackage

/// Why `system_getaddrinfo` found no address: the resolver's `EAI_*` code
/// and its message.
package struct AddressInfoError: Error, Sendable, CustomStringConvertible {
    /// The `EAI_*` code `getaddrinfo` returned.
    package let code: CInt
    /// The errno, for `EAI_SYSTEM`.
    package let errno: Errno?

    /// The message of `gai_strerror` (or of the errno, for `EAI_SYSTEM`),
    /// such as `Name or service not known`.
    package var description: String {
        if let errno { return errno.description }
        return String(cString: gai_strerror(code))
    }
}

/// The IPv4 and IPv6 addresses of `host` (a name such as `localhost`, or a
/// numeric address) with `port`, for a stream socket, in the order the
/// resolver prefers them. The corresponding C function is `getaddrinfo`.
package func system_getaddrinfo(_ host: String, port: UInt16) -> Result<[SocketAddress], AddressInfoError> {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
    hints.ai_flags = AI_NUMERICSERV
    var list: UnsafeMutablePointer<addrinfo>?
    let code = getaddrinfo(host, String(port), &hints, &list)
    guard code == 0 else {
        let errno = code == EAI_SYSTEM ? Errno(rawValue: cepoll_errno()) : nil
        return .failure(AddressInfoError(code: code, errno: errno))
    }
    defer { freeaddrinfo(list) }
    var addresses: [SocketAddress] = []
    var entry = list
    while let current = entry {
        let info = current.pointee
        if let address = info.ai_addr, info.ai_family == AF_INET || info.ai_family == AF_INET6 {
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { raw in
                raw.copyMemory(
                    from: UnsafeRawBufferPointer(
                        start: address, count: min(Int(info.ai_addrlen), MemoryLayout<sockaddr_storage>.size)))
            }
            addresses.append(SocketAddress(storage: storage))
        }
        entry = info.ai_next
    }
    return .success(addresses)
}
