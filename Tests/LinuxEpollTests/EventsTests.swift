// The flags: each Events member is the C (and Python)
// constant, bit for bit; the default mask; the description.
import LinuxEpoll
import Testing

@Suite("Events")
struct EventsTests {
    struct Constant: Sendable, CustomTestStringConvertible {
        let name: String
        let member: Epoll.Events
        let value: UInt32
        var testDescription: String { "EPOLL\(name)" }
    }

    static let constants: [Constant] = [
        Constant(name: "IN", member: .in, value: 0x1),
        Constant(name: "PRI", member: .pri, value: 0x2),
        Constant(name: "OUT", member: .out, value: 0x4),
        Constant(name: "ERR", member: .err, value: 0x8),
        Constant(name: "HUP", member: .hup, value: 0x10),
        Constant(name: "RDNORM", member: .rdnorm, value: 0x40),
        Constant(name: "RDBAND", member: .rdband, value: 0x80),
        Constant(name: "WRNORM", member: .wrnorm, value: 0x100),
        Constant(name: "WRBAND", member: .wrband, value: 0x200),
        Constant(name: "MSG", member: .msg, value: 0x400),
        Constant(name: "RDHUP", member: .rdhup, value: 0x2000),
        Constant(name: "EXCLUSIVE", member: .exclusive, value: 1 << 28),
        Constant(name: "WAKEUP", member: .wakeup, value: 1 << 29),
        Constant(name: "ONESHOT", member: .oneshot, value: 1 << 30),
        Constant(name: "ET", member: .et, value: 1 << 31),
    ]

    @Test("every Events constant equals its C and Python value", arguments: constants)
    func constantValue(constant: Constant) {
        #expect(constant.member.rawValue == constant.value)
        #expect(constant.member.description == constant.name)
    }

    @Test("the constants are fifteen distinct single bits")
    func constantsDistinct() {
        let all = Self.constants.reduce(Epoll.Events()) { $0.union($1.member) }
        #expect(all.rawValue.nonzeroBitCount == Self.constants.count)
    }

    @Test("Events.default is IN|PRI|OUT (0x7), Python's register default")
    func defaultMask() {
        #expect(Epoll.Events.default == [.in, .pri, .out])
        #expect(Epoll.Events.default.rawValue == 0x7)
    }

    @Test("description joins names with |, prints unknown bits in hex, and 0 when empty")
    func description() {
        #expect(Epoll.Events(rawValue: 0x2001).description == "IN|RDHUP")
        #expect(Epoll.Events([.in, .out, .et]).description == "IN|OUT|ET")
        #expect(Epoll.Events().description == "0")
        #expect(Epoll.Events(rawValue: 0x1 | 0x800).description == "IN|0x800")
        #expect(Epoll.Events(rawValue: 0x800).description == "0x800")
    }

    @Test("readiness is tested with contains: a combined event contains each of its flags")
    func containsCombined() {
        let reported: Epoll.Events = [.in, .hup]
        #expect(reported.contains(.in))
        #expect(reported.contains(.hup))
        #expect(reported != .in)
        #expect(!reported.isDisjoint(with: [.err, .hup]))
    }
}
