import CEpollShim
import Selectors
import Syscalls
import SystemPackage
import Testing

/// The `Selector` contract, run against every backend (as CPython's
/// test_selectors does).
@Suite("Selector contract")
struct SelectorContractTests {
    @Test("register returns the key; key(for:) and registeredCount see it", arguments: SelectorKind.allCases)
    func registerReturnsKey(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let pair = try await Pair.belowSelectLimit()
        defer { pair.closeAll() }
        let key = try selector.register(pair.a, interest: .read, data: "a")
        #expect(key.fileDescriptor == pair.a && key.interest == .read && key.data == "a")
        #expect(selector.key(for: pair.a)?.data == "a")
        #expect(selector.key(for: pair.b) == nil)
        #expect(selector.registeredCount == 1)
    }

    @Test("register twice fails with alreadyRegistered", arguments: SelectorKind.allCases)
    func registerTwice(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let pair = try await Pair.belowSelectLimit()
        defer { pair.closeAll() }
        try selector.register(pair.a, interest: .read, data: "a")
        #expect(throws: SelectorError.alreadyRegistered(pair.a)) {
            try selector.register(pair.a, interest: .write, data: "again")
        }
        #expect(selector.key(for: pair.a)?.data == "a")
    }

    @Test("an unknown descriptor: modify and unregister fail with notRegistered", arguments: SelectorKind.allCases)
    func unknownDescriptor(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let pair = try await Pair.belowSelectLimit()
        defer { pair.closeAll() }
        #expect(throws: SelectorError.notRegistered(pair.a)) { try selector.modify(pair.a, interest: .read, data: "") }
        #expect(throws: SelectorError.notRegistered(pair.a)) { try selector.unregister(pair.a) }
    }

    @Test("a negative descriptor and an empty interest are rejected", arguments: SelectorKind.allCases)
    func invalidArguments(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let pair = try await Pair.belowSelectLimit()
        defer { pair.closeAll() }
        let negative = FileDescriptor(rawValue: -1)
        #expect(throws: SelectorError.invalidDescriptor(negative)) {
            try selector.register(negative, interest: .read, data: "")
        }
        #expect(throws: SelectorError.invalidInterest) { try selector.register(pair.a, interest: [], data: "") }
        #expect(throws: SelectorError.invalidInterest) {
            try selector.register(pair.a, interest: Interest(rawValue: 4), data: "")
        }
        #expect(selector.registeredCount == 0)
    }

    @Test("modify changing only data makes no syscall", arguments: SelectorKind.allCases)
    func modifyDataOnly(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let pair = try await Pair.belowSelectLimit()
        defer { pair.closeAll() }
        try selector.register(pair.a, interest: .read, data: "old")
        let mock = SyscallMock()
        let key = try mock.install { try selector.modify(pair.a, interest: .read, data: "new") }
        #expect(key.data == "new")
        #expect(selector.key(for: pair.a)?.data == "new")
        #expect(Syscall.allCases.allSatisfy { mock.calls($0) == 0 })
    }

    @Test("modify changing the interest changes what is reported", arguments: SelectorKind.allCases)
    func modifyInterest(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let pair = try await Pair.belowSelectLimit()
        defer { pair.closeAll() }
        try selector.register(pair.a, interest: .read, data: "a")
        #expect(try readyPairs(selector) == [])
        try selector.modify(pair.a, interest: .write, data: "a")
        #expect(try readyPairs(selector) == ["a:write"])
    }

    @Test("after close every call fails with closed; close again does nothing", arguments: SelectorKind.allCases)
    func useAfterClose(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let pair = try await Pair.belowSelectLimit()
        defer { pair.closeAll() }
        try selector.register(pair.a, interest: .read, data: "a")
        selector.close()
        selector.close()
        #expect(selector.isClosed)
        #expect(selector.registeredCount == 0)
        #expect(throws: SelectorError.closed) { try selector.register(pair.b, interest: .read, data: "") }
        #expect(throws: SelectorError.closed) { try selector.modify(pair.a, interest: .read, data: "") }
        #expect(throws: SelectorError.closed) { try selector.unregister(pair.a) }
        #expect(throws: SelectorError.closed) { try selector.select(timeout: .zero) }
    }

    @Test("select(timeout: .zero) with nothing registered returns at once, empty", arguments: SelectorKind.allCases)
    func selectEmpty(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        #expect(try selector.select(timeout: .zero).isEmpty)
    }

    @Test("a timeout waits at least its length when nothing is ready", arguments: SelectorKind.allCases)
    func selectTimeout(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let pair = try await Pair.belowSelectLimit()
        defer { pair.closeAll() }
        try selector.register(pair.a, interest: .read, data: "a")
        let start = system_clock_gettime_monotonic()
        #expect(try selector.select(timeout: .milliseconds(30)).isEmpty)
        #expect(system_clock_gettime_monotonic() - start >= 30_000_000)
    }

    @Test("ready masks are what is ready, within what was registered", arguments: SelectorKind.allCases)
    func readyMasks(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let both = try await Pair.belowSelectLimit()
        let readOnly = try await Pair.belowSelectLimit()
        defer {
            both.closeAll()
            readOnly.closeAll()
        }
        try selector.register(both.a, interest: [.read, .write], data: "both")
        try selector.register(readOnly.a, interest: .read, data: "readOnly")
        #expect(try readyPairs(selector) == ["both:write"])
        try both.sendToA()
        try readOnly.sendToA()
        #expect(try readyPairs(selector) == ["both:read|write", "readOnly:read"])
        both.drainA()
        readOnly.drainA()
        #expect(try readyPairs(selector) == ["both:write"])
    }

    @Test("a hang-up is reported as read and write, masked by the interest", arguments: SelectorKind.allCases)
    func hangUpReportedAsBoth(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let readOnly = try await Pair.belowSelectLimit()
        let writeOnly = try await Pair.belowSelectLimit()
        defer {
            _ = system_close(readOnly.a.rawValue)
            _ = system_close(writeOnly.a.rawValue)
        }
        try selector.register(readOnly.a, interest: .read, data: "r")
        try selector.register(writeOnly.a, interest: .write, data: "w")
        _ = system_close(readOnly.b.rawValue)
        _ = system_close(writeOnly.b.rawValue)
        #expect(try readyPairs(selector) == ["r:read", "w:write"])
    }

    @Test("unregister after the descriptor was closed forgets it", arguments: SelectorKind.allCases)
    func unregisterClosed(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let pair = try await Pair.belowSelectLimit()
        defer { _ = system_close(pair.b.rawValue) }
        try selector.register(pair.a, interest: .read, data: "a")
        _ = system_close(pair.a.rawValue)
        let key = try selector.unregister(pair.a)
        #expect(key.data == "a")
        #expect(selector.key(for: pair.a) == nil)
        #expect(selector.registeredCount == 0)
        #expect(try selector.select(timeout: .zero).isEmpty)
    }

    @Test("a registration removed during a batch gets no event from it", arguments: SelectorKind.allCases)
    func spuriousAfterUnregister(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let (first, second) = try await twoReadyRegistrations(on: selector)
        defer {
            first.closeAll()
            second.closeAll()
        }
        var seen: [String] = []
        let calls = try selector.select(timeout: .zero) { key, _ in
            seen.append(key.data)
            // Whichever comes first removes the other: its event, already
            // collected by the kernel call, must not be delivered.
            let other = key.data == "first" ? second.a : first.a
            try selector.unregister(other)
        }
        #expect(calls == 1)
        #expect(seen.count == 1)
    }

    @Test(
        "a handler that closes the selector ends the batch: no later event is delivered",
        arguments: SelectorKind.allCases)
    func closedDuringBatch(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let (first, second) = try await twoReadyRegistrations(on: selector)
        defer {
            first.closeAll()
            second.closeAll()
        }
        var seen: [String] = []
        let calls = try selector.select(timeout: .zero) { key, _ in
            seen.append(key.data)
            selector.close()
        }
        #expect(calls == 1)
        #expect(seen.count == 1)
        #expect(selector.isClosed)
        #expect(throws: SelectorError.closed) { try selector.select(timeout: .zero) }
    }

    @Test(
        "an event for a closed descriptor never reaches the registration that reused its number",
        arguments: SelectorKind.allCases)
    func staleEventAfterReuse(kind: SelectorKind) async throws {
        let selector = try makeSelector(kind)
        let (first, second) = try await twoReadyRegistrations(on: selector)
        let fresh = try await Pair.belowSelectLimit()
        defer {
            first.closeAll()
            second.closeAll()
            fresh.closeAll()
        }
        var seen: [String] = []
        try selector.select(timeout: .zero) { key, _ in
            seen.append(key.data)
            guard seen.count == 1 else { return }
            // Close the other one and give its number to a new, readable
            // registration, as an accept in the same batch would.
            let other = key.data == "first" ? second.a : first.a
            try selector.unregister(other)
            _ = try system_dup3(fresh.a.rawValue, other.rawValue).get()
            try fresh.sendToA()
            try selector.register(other, interest: .read, data: "reused")
        }
        #expect(seen.count == 1)
        #expect(!seen.contains("reused"))
        // The new registration works from the next select on.
        #expect(try readyPairs(selector).contains { $0.hasPrefix("reused:read") })
    }
}
