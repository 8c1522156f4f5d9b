// The conversion of a Swift timeout to the kernel's milliseconds, rounded up
// as CPython does (0.1 ms waits 1 ms; too large a timeout is Python's OverflowError).
import Syscalls
import Testing

@Suite("Timeout rounding")
struct TimeoutTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let timeout: Duration?
        let expected: Result<CInt, TimeoutConversionError>
        let label: String
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(timeout: nil, expected: .success(-1), label: "nil waits forever (-1)"),
        Case(timeout: .seconds(-1), expected: .success(-1), label: "-1 s waits forever (-1)"),
        Case(timeout: .nanoseconds(-1), expected: .success(-1), label: "-1 ns waits forever (-1)"),
        Case(timeout: .seconds(Int64.min), expected: .success(-1), label: "most negative waits forever (-1)"),
        Case(timeout: .zero, expected: .success(0), label: "zero does not wait (0)"),
        Case(timeout: .nanoseconds(1), expected: .success(1), label: "1 ns rounds up to 1 ms"),
        Case(timeout: .microseconds(100), expected: .success(1), label: "0.1 ms rounds up to 1 ms"),
        Case(timeout: .milliseconds(1), expected: .success(1), label: "1 ms is 1 ms"),
        Case(timeout: .nanoseconds(1_000_001), expected: .success(2), label: "1.000001 ms rounds up to 2 ms"),
        Case(timeout: .milliseconds(999), expected: .success(999), label: "999 ms is 999 ms"),
        Case(timeout: .seconds(1), expected: .success(1000), label: "1 s is 1000 ms"),
        Case(timeout: .seconds(1) + .nanoseconds(1), expected: .success(1001), label: "1 s + 1 ns is 1001 ms"),
        Case(timeout: .milliseconds(Int64(CInt.max)), expected: .success(CInt.max), label: "CInt.max ms fits"),
        Case(
            timeout: .milliseconds(Int64(CInt.max)) + .nanoseconds(1),
            expected: .failure(.tooLarge),
            label: "CInt.max ms + 1 ns is too large"
        ),
        Case(timeout: .seconds(Int64(CInt.max)), expected: .failure(.tooLarge), label: "CInt.max s is too large"),
        Case(timeout: .seconds(Int64.max), expected: .failure(.tooLarge), label: "Int64.max s is too large"),
    ]

    @Test("milliseconds(roundingUp:) converts like CPython", arguments: cases)
    func conversion(_ testCase: Case) {
        #expect(milliseconds(roundingUp: testCase.timeout) == testCase.expected)
    }
}
