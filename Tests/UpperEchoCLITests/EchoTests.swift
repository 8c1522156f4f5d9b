import Foundation
import Syscalls
import TestSupport
import Testing

extension UpperEchoCLITests {
    @Suite struct Echo {
        /// What CPython's `bytes(range(256)).upper()` gives, from python3 itself.
        static func pythonUpperOfEveryByte() throws -> [UInt8] {
            let python = Process()
            python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            python.arguments = ["python3", "-c", "import sys; sys.stdout.buffer.write(bytes(range(256)).upper())"]
            let pipe = Pipe()
            python.standardOutput = pipe
            try python.run()
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            python.waitUntilExit()
            return [UInt8](output)
        }

        @Test(arguments: ["epoll", "poll", "select"], ServerLayout.everyAPI)
        func everyByteValueComesBackAsPythonBytesUpperMakesIt(backend: String, layout: ServerLayout) throws {
            let expected = try Self.pythonUpperOfEveryByte()
            try #require(expected.count == 256)
            #expect(expected == pythonUpper((0...255).map { UInt8($0) }))
            try withUpperEcho(["--selector", backend], layout: layout) { _, port in
                let client = try TestClient(port: port)
                try client.send((0...255).map { UInt8($0) })
                #expect(client.receive(count: 256) == expected)
                // Twice over, misaligned, so the eight-bytes-at-a-time path meets every value at every offset.
                let shifted = (0..<512 + 3).map { UInt8(truncatingIfNeeded: $0 &+ 5) }
                try client.send(shifted)
                #expect(client.receive(count: shifted.count) == pythonUpper(shifted))
            }
        }

        /// All thousand connected and all thousand requests sent before any
        /// reply is read; each client then checks its own reply.
        @Test(arguments: ServerLayout.everyAPI)
        func aThousandConcurrentClientsEachGetTheirOwnReply(layout: ServerLayout) throws {
            _ = system_setrlimit_raise_nofile()
            try withUpperEcho(["--backlog", "2048"], layout: layout) { server, port in
                let count = 1000
                func payload(_ index: Int) -> String { "client \(index) of \(count): \(String(index, radix: 36))\n" }
                var clients: [TestClient] = []
                for _ in 0..<count { clients.append(try TestClient(port: port)) }
                for (index, client) in clients.enumerated() { try client.send(payload(index)) }
                var wrong: [Int] = []
                for (index, client) in clients.enumerated() {
                    let expected = pythonUpper(Array(payload(index).utf8))
                    if client.receive(count: expected.count) != expected { wrong.append(index) }
                }
                #expect(wrong.isEmpty, "\(wrong.count) clients got a wrong reply, the first: \(wrong.prefix(5))")
                let stats = try #require(server.stats())
                #expect(stats["accepted"] == count)
                #expect(stats["open"] == count)
                #expect(stats["bytes_in"] == (0..<count).reduce(0) { $0 + payload($1).utf8.count })
            }
        }

        /// select(2) cannot watch descriptor 1024: the server must refuse that
        /// connection (close it, log a warning) and go on serving the others.
        @Test(arguments: ServerLayout.everyAPI)
        func selectClosesTheConnectionWhoseDescriptorWouldBe1024AndServesTheRest(layout: ServerLayout) throws {
            _ = system_setrlimit_raise_nofile()
            try withUpperEcho(["--selector", "select", "--backlog", "2048"], layout: layout) { server, port in
                // A descriptor the server inherited from a test running in
                // parallel may sit above 1024; only the numbers below count.
                let held = server.openDescriptors()
                let inheritedAbove = held.filter { $0 >= 1024 }
                let below = held.filter { $0 < 1024 }
                try #require(!below.isEmpty)
                // New connections take the lowest free numbers: this many fit below 1024.
                let capacity = 1024 - below.count
                var clients: [TestClient] = []
                for index in 0..<capacity {
                    let client = try TestClient(port: port)
                    try #require(client.roundTrip("client \(index)"), "client \(index) of \(capacity) not served")
                    clients.append(client)
                }
                #expect(server.openDescriptors().filter { $0 < 1024 }.last == 1023)

                // The next client's descriptor would be 1024: closed at once, twice.
                for attempt in 0..<2 {
                    let over = try TestClient(port: port)
                    #expect(over.ending() == .endOfFile, "client over the limit, attempt \(attempt)")
                }
                #expect(
                    waitUntil { server.errors.text.components(separatedBy: "cannot watch a new connection").count == 3 }
                )
                #expect(
                    server.errors.text.contains(
                        inheritedAbove.isEmpty
                            ? "descriptor 1024 is out of range for select()" : "is out of range for select()"))
                #expect(server.openDescriptors().contains(1023))
                #expect(
                    server.openDescriptors().filter { $0 >= 1024 } == inheritedAbove,
                    "the refused descriptor was not closed")

                // The earlier clients are all still served.
                for index in [0, capacity / 2, capacity - 1] {
                    #expect(clients[index].roundTrip("again \(index)"), "client \(index) no longer served")
                }
                // A descriptor below 1024 freed: the next client is served again.
                clients[7].close()
                #expect(waitUntil { server.stats()?["open"] == capacity - 1 })
                let next = try TestClient(port: port)
                #expect(next.roundTrip("a new client after one left"))

                let stats = try #require(server.stats())
                #expect(stats["accepted"] == capacity + 3)
                #expect(stats["open"] == capacity)
                #expect(stats["closed"] == 1, "refused connections are not counted as closed")
                #expect(stats["refused"] == 2, "the two connections over the limit are counted as refused")
            }
        }
    }
}
