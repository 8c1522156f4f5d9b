import Foundation
import Synchronization
import Syscalls
import TestSupport
import Testing

extension ReliabilityTests {
    /// How one churn cycle ends; cycle `n` uses `CloseKind.allCases[n % 4]`.
    enum CloseKind: CaseIterable {
        /// Reply read, then `close`: FIN.
        case graceful
        /// `shutdown(SHUT_WR)` after the request, reply and EOF read, then `close`.
        case halfClose
        /// Reply read, then a reset (`SO_LINGER` 0).
        case resetAfterReply
        /// A reset right after the request, the reply unread.
        case resetBeforeReply
    }

    /// Scenario 2. Connect / echo / close cycles from 4 client threads,
    /// mixing graceful closes and resets, in blocks of 10,000: after each
    /// block the server's descriptors are back to their baseline and its
    /// resident memory is sampled. Soak: 10 blocks, and memory grows less
    /// than 5 % from block 2 to block 10.
    @Test(arguments: ServerLayout.everyAPI)
    func churnConnectEchoCloseCyclesLeakNothing(layout: ServerLayout) throws {
        let blocks = Soak.pick(short: 1, soak: 10)
        let blockSize = 10_000
        let threads = 4
        let server = try ServerProcess.upperEcho(layout.arguments)
        defer { server.stop() }
        let baselineDescriptors = server.openDescriptorCount()
        let baselineKilobytes = try #require(server.residentKilobytes())
        let failures = Atomic<Int>(0)
        let firstFailure = Lock<String?>(nil)
        var residentAfterBlock: [Int] = []
        var descriptorsAfterBlock: [Int] = []
        let port = server.port
        let start = ContinuousClock.now
        for block in 0..<blocks {
            let finished = runThreads(threads, timeout: .seconds(120)) { thread in
                for cycle in stride(from: block * blockSize + thread, to: (block + 1) * blockSize, by: threads) {
                    if let failure = Self.churnCycle(cycle, port: port) {
                        failures.add(1, ordering: .relaxed)
                        firstFailure.withLock { $0 = $0 ?? failure }
                    }
                }
            }
            try #require(finished, "block \(block) did not finish within 120 s")
            let descriptors = server.waitForDescriptorCount(baselineDescriptors)
            descriptorsAfterBlock.append(descriptors)
            residentAfterBlock.append(try #require(server.residentKilobytes()))
            #expect(descriptors == baselineDescriptors, "block \(block): descriptors \(descriptors)")
        }
        let elapsed = ContinuousClock.now - start
        let cycles = blocks * blockSize

        #expect(failures.load(ordering: .relaxed) == 0, "first failure: \(firstFailure.withLock { $0 } ?? "")")
        #expect(server.isRunning, "upper-echo died: \(server.child.errors.text.suffix(500))")
        let stats = try #require(server.stats())
        #expect(stats["accepted"] == cycles && stats["closed"] == cycles && stats["open"] == 0, "\(stats)")
        #expect(stats["resets"] ?? 0 > 0, "no cycle ended in a reset on the server's side")
        var growth = "n/a (one block; the soak form measures block 2 to block 10)"
        if blocks >= 10 {
            let percent = Double(residentAfterBlock[9] - residentAfterBlock[1]) / Double(residentAfterBlock[1]) * 100
            growth = "\(fixed(percent, 2)) %"
            #expect(percent < 5 || Sanitizer.isActive, "RSS after each block: \(residentAfterBlock)")
        }
        figure(
            "churn (\(layout))",
            "cycles=\(cycles) in \(fixed(seconds(elapsed), 1))s (\(Int(Double(cycles) / seconds(elapsed))) cycles/s,"
                + " \(threads) threads) failures=\(failures.load(ordering: .relaxed))"
                + " server_resets=\(stats["resets"] ?? -1) descriptors baseline=\(baselineDescriptors)"
                + " after_each_block=\(descriptorsAfterBlock) rss_kb baseline=\(baselineKilobytes)"
                + " after_each_block=\(residentAfterBlock) growth_block2_to_10=\(growth)"
        )
    }

    /// One connect / echo / close cycle; returns what went wrong, or `nil`.
    static func churnCycle(_ cycle: Int, port: UInt16) -> String? {
        let client: Client
        do { client = try Client(port: port) } catch { return "cycle \(cycle): \(error)" }
        let request = Array("cycle \(cycle) of the churn, mixed Case\n".utf8)
        do { try client.send(request) } catch { return "cycle \(cycle): \(error)" }
        let kind = CloseKind.allCases[cycle % CloseKind.allCases.count]
        if kind == .resetBeforeReply {
            client.reset()
            return nil
        }
        if kind == .halfClose { try? client.shutdownWrite() }
        let reply = client.receive(count: request.count)
        guard reply == request.map(pythonUpper) else {
            return "cycle \(cycle) (\(kind)): reply \(String(decoding: reply, as: UTF8.self).debugDescription)"
        }
        switch kind {
        case .graceful: client.close()
        case .halfClose:
            let ending = client.streamEnding()
            client.close()
            if ending != .endOfFile { return "cycle \(cycle) (half-close): \(ending) instead of end of file" }
        case .resetAfterReply, .resetBeforeReply: client.reset()
        }
        return nil
    }
}
