import Foundation
import Syscalls

/// Clients that each sent one message and wait for its reply, when which of
/// them the server has accepted is not known in advance: with several
/// `SO_REUSEPORT` listeners each has its own backlog, so the clients served
/// first are not the first to connect. Every message must have the same
/// length, so that the server's `bytes_in` tells how many it has read.
public final class PendingReplies {
    private let clients: [TestClient]
    private let messages: [[UInt8]]
    private var received: [[UInt8]]

    /// Which clients have their whole reply, in index order.
    public var answered: [Int] { clients.indices.filter { received[$0].count == messages[$0].count } }
    /// Which have none of it yet.
    public var waiting: [Int] { clients.indices.filter { received[$0].isEmpty } }
    /// Bytes received by all clients together.
    public var bytesReceived: Int { received.reduce(0) { $0 + $1.count } }

    /// Sends `message(index)` on each client.
    public init(_ clients: [TestClient], message: (Int) -> String) throws {
        self.clients = clients
        messages = clients.indices.map { Array(message($0).utf8) }
        precondition(Set(messages.map(\.count)).count <= 1, "every message must have the same length")
        received = Array(repeating: [], count: clients.count)
        for (index, client) in clients.enumerated() { try client.send(messages[index]) }
    }

    /// The length of each message.
    public var messageLength: Int { messages.first?.count ?? 0 }

    /// Reads, without blocking, what has arrived for each open client,
    /// until `count` clients in all have their whole reply or `timeout`
    /// passes; returns whether they did.
    public func waitForAnswered(_ count: Int, timeout: Duration = .seconds(60)) -> Bool {
        waitUntil(timeout: timeout) {
            for index in clients.indices where clients[index].fd >= 0 && received[index].count < messages[index].count {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let got = buffer.withUnsafeMutableBytes {
                    recv(clients[index].fd, $0.baseAddress, $0.count, CInt(MSG_DONTWAIT))
                }
                if got > 0 { received[index] += buffer[0..<got] }
            }
            return answered.count >= count
        }
    }

    /// Clients whose bytes so far differ from their upper-cased message.
    public var mismatched: [Int] {
        clients.indices.filter { index in
            let expected = messages[index].map(pythonUpper)
            return !received[index].elementsEqual(expected.prefix(received[index].count))
        }
    }
}
