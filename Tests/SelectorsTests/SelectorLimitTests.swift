import CEpollShim
import Selectors
import Syscalls
import SystemPackage
import Testing

@Suite("Selector limits")
struct SelectorLimitTests {
    @Test("a descriptor numbered 1024 or more works with poll and epoll", arguments: [SelectorKind.poll, .epoll])
    func highDescriptorWorks(kind: SelectorKind) throws {
        let selector = try makeSelector(kind)
        let pair = try Pair()
        let high = try renumber(pair.a, atLeast: 1500)
        defer {
            _ = system_close(high.rawValue)
            _ = system_close(pair.b.rawValue)
        }
        #expect(high.rawValue >= 1500)
        try selector.register(high, interest: .read, data: "high")
        _ = try [UInt8(1)].withUnsafeBytes { try system_send(pair.b.rawValue, $0).get() }
        #expect(try readyPairs(selector) == ["high:read"])
    }

    @Test("select refuses a descriptor numbered 1024 or more with a clear error")
    func selectRefusesHighDescriptor() throws {
        let selector = try makeSelector(.select)
        let pair = try Pair()
        let high = try renumber(pair.a, atLeast: 1024)
        defer {
            _ = system_close(high.rawValue)
            _ = system_close(pair.b.rawValue)
        }
        #expect(throws: SelectorError.descriptorOutOfRange(high, limit: 1024)) {
            try selector.register(high, interest: .read, data: "high")
        }
        #expect(selector.registeredCount == 0)
        #expect(SelectorError.descriptorOutOfRange(high, limit: 1024).description.contains("below 1024"))
    }

    @Test("2,000 descriptors: exactly the ready ones are reported", arguments: [SelectorKind.poll, .epoll])
    func twoThousandDescriptors(kind: SelectorKind) throws {
        let selector = try makeSelector(kind)
        var pairs: [Pair] = []
        defer { pairs.forEach { $0.closeAll() } }
        for index in 0..<1000 {
            let pair = try Pair()
            pairs.append(pair)
            try selector.register(pair.a, interest: .read, data: "a\(index)")
            try selector.register(pair.b, interest: .read, data: "b\(index)")
        }
        #expect(selector.registeredCount == 2000)
        #expect(try selector.select(timeout: .zero).isEmpty)
        let chosen = [0, 7, 499, 999]
        for index in chosen { try pairs[index].sendToA() }
        let ready = try readyPairs(selector)
        #expect(ready == chosen.map { "a\($0):read" }.sorted())
    }

    @Test("SelectorKind names every backend, epoll by default")
    func kinds() throws {
        #expect(SelectorKind.default == .epoll)
        #expect(SelectorKind.allCases.map(\.rawValue) == ["epoll", "poll", "select"])
        #expect(SelectorKind(rawValue: "kqueue") == nil)
        #expect(try makeSelector(.epoll) is EpollSelector<String>)
        #expect(try makeSelector(.poll) is PollSelector<String>)
        #expect(try makeSelector(.select) is SelectSelector<String>)
    }
}
