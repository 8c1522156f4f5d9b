// The differential test: every scenario below runs once under CPython's
// `select.epoll` (PythonEpollDriver, in a python3 subprocess) and once under
// `Epoll` (EpollStepRunner), and the two lists of results must be equal,
// step by step.
//
// The step language, one JSON array per step:
//   ["epoll"] / ["epoll", sizehint]     create (closing the previous one)
//   ["socketpair", a, b] ["pipe", r, w] ["tcp", client, server] ["tempfile", f]
//   ["register", x] / ["register", x, "IN|ET"]   mask by names; "" is 0
//   ["modify", x, mask] ["unregister", x] ["register_epoll_self"] ["register_negative"]
//   ["send", x, text] ["recv", x, n] ["shutdown_wr", x] ["close", x]
//   ["close_epoll"] ["closed"] ["fileno"] ["with"]
//   ["poll", timeout_ms_or_null] / ["poll", timeout_ms, maxevents]
// Each step gives "ok", the Python exception's name ("OSError:EBADF" for a
// bare OSError), or for poll the sorted list of "label:0xMASK".
import Foundation
import Testing

@Suite("Differential: Epoll against CPython's select.epoll")
struct DifferentialTests {
    static let scenarios = #"""
        {
          "row 1 create and size hints": [["epoll"], ["closed"], ["epoll", -1], ["epoll", 5], ["epoll", 0],
            ["epoll", -2], ["epoll", 1], ["closed"]],
          "rows 3-5 fileno, closed, close twice": [["epoll"], ["closed"], ["fileno"], ["close_epoll"], ["closed"],
            ["close_epoll"], ["closed"], ["fileno"]],
          "row 7 context manager": [["epoll"], ["with"], ["closed"], ["with"]],
          "row 12 closed first": [["socketpair", "a", "b"], ["epoll"], ["close_epoll"], ["register", "a"],
            ["register", "a", "IN"], ["modify", "a", "IN"], ["unregister", "a"], ["poll", 0], ["poll", 0, 0],
            ["poll", 2147483648000], ["register_negative"], ["register_epoll_self"], ["fileno"]],
          "row 9 register twice": [["epoll"], ["socketpair", "a", "b"], ["register", "a", "IN"],
            ["register", "a", "OUT"], ["register", "a"], ["poll", 0]],
          "row 9 default mask": [["epoll"], ["socketpair", "a", "b"], ["register", "a"], ["poll", 0],
            ["send", "b", "x"], ["poll", 0]],
          "rows 10-11 unknown fd": [["epoll"], ["socketpair", "a", "b"], ["modify", "a", "IN"], ["unregister", "a"],
            ["register", "a"], ["unregister", "a"], ["unregister", "a"], ["poll", 0]],
          "rows 9-11 closed fd": [["epoll"], ["socketpair", "a", "b"], ["close", "a"], ["register", "a", "IN"],
            ["modify", "a", "IN"], ["unregister", "a"], ["socketpair", "c", "d"], ["register", "c", "IN"],
            ["close", "c"], ["unregister", "c"], ["poll", 0]],
          "row 9 regular file": [["epoll"], ["tempfile", "f"], ["register", "f"], ["register", "f", "IN"],
            ["modify", "f", "IN"], ["unregister", "f"]],
          "row 9 self and negative": [["epoll"], ["register_epoll_self"], ["register_negative"], ["poll", 0]],
          "rows 9-10 exclusive": [["epoll"], ["socketpair", "a", "b"], ["register", "a", "IN|EXCLUSIVE|ONESHOT"],
            ["register", "a", "IN|EXCLUSIVE"], ["modify", "a", "IN"], ["modify", "a", "IN|EXCLUSIVE"],
            ["register", "b", "IN"], ["modify", "b", "IN|EXCLUSIVE"], ["modify", "b", "OUT"], ["poll", 0]],
          "row 10 mask 0 reports HUP": [["epoll"], ["socketpair", "a", "b"], ["register", "a", ""],
            ["send", "b", "x"], ["poll", 0], ["close", "b"], ["poll", 30000]],
          "row 10 modify to 0 reports HUP": [["epoll"], ["pipe", "r", "w"], ["register", "r", "IN"],
            ["modify", "r", ""], ["close", "w"], ["poll", 30000]],
          "row 17 level-triggered": [["epoll"], ["socketpair", "a", "b"], ["register", "a", "IN"],
            ["send", "b", "0123456789"], ["poll", 0], ["recv", "a", 5], ["poll", 0], ["recv", "a", 5], ["poll", 0]],
          "row 17 edge-triggered partial read": [["epoll"], ["socketpair", "a", "b"], ["register", "a", "IN|ET"],
            ["send", "b", "0123456789"], ["poll", 0], ["recv", "a", 5], ["poll", 0], ["send", "b", "more"],
            ["poll", 0], ["poll", 0]],
          "row 17 oneshot re-armed by modify": [["epoll"], ["socketpair", "a", "b"], ["register", "a", "IN|ONESHOT"],
            ["send", "b", "x"], ["poll", 0], ["poll", 0], ["send", "b", "y"], ["poll", 0],
            ["modify", "a", "IN|ONESHOT"], ["poll", 0], ["poll", 0]],
          "RDHUP over AF_UNIX": [["epoll"], ["socketpair", "a", "b"], ["register", "a", "IN|RDHUP"], ["poll", 0],
            ["shutdown_wr", "b"], ["poll", 30000], ["recv", "a", 10], ["poll", 0]],
          "RDHUP over TCP": [["epoll"], ["tcp", "c", "s"], ["register", "c", "OUT"], ["register", "s", "IN|RDHUP"],
            ["poll", 0], ["unregister", "c"], ["shutdown_wr", "c"], ["poll", 30000]],
          "pipe IN, OUT and HUP": [["epoll"], ["pipe", "r", "w"], ["register", "w", "OUT"], ["register", "r", "IN"],
            ["poll", 0], ["send", "w", "x"], ["poll", 0], ["close", "w"], ["poll", 30000]],
          "row 13 timeouts": [["epoll"], ["poll", 0], ["poll", 0.1], ["poll", 2], ["poll", 2147483648000],
            ["socketpair", "a", "b"], ["register", "a", "OUT"], ["poll", null], ["poll", -1], ["poll", -1000],
            ["poll", 60000], ["poll", 2147483648000]],
          "row 14 maxevents": [["epoll"], ["socketpair", "a", "b"], ["register", "a", "OUT"],
            ["register", "b", "OUT"], ["poll", 0, 0], ["poll", 0, -2], ["poll", 0, 1], ["poll", 0, -1],
            ["poll", 0, 2], ["poll", 0, 1000000]],
          "rows 13-14 which error first": [["epoll"], ["poll", 2147483648000, 0]]
        }
        """#

    @Test("Epoll and CPython's select.epoll give the same result at every step of every scenario")
    func sameResultsAsCPython() throws {
        let input = Data(Self.scenarios.utf8)
        let scenarios = try #require(try JSONSerialization.jsonObject(with: input) as? [String: [[Any]]])
        let python = try JSONDecoder().decode([String: [String]].self, from: PythonEpollDriver.run(input: input))
        #expect(Set(python.keys) == Set(scenarios.keys))
        for (name, steps) in scenarios.sorted(by: { $0.key < $1.key }) {
            let swift = EpollStepRunner.run(steps)
            let cpython = python[name] ?? []
            #expect(swift.count == steps.count, "\(name)")
            for (index, step) in steps.enumerated() {
                let mine = index < swift.count ? swift[index] : "<missing>"
                let theirs = index < cpython.count ? cpython[index] : "<missing>"
                #expect(mine == theirs, "\(name), step \(index) \(describe(step)): Epoll \(mine), CPython \(theirs)")
            }
        }
    }

    @Test("the scenarios exercise every outcome the table names")
    func scenariosCoverOutcomes() throws {
        let input = Data(Self.scenarios.utf8)
        let python = try JSONDecoder().decode([String: [String]].self, from: PythonEpollDriver.run(input: input))
        let outcomes = Set(python.values.joined())
        for expected in [
            "ValueError", "OverflowError", "FileExistsError", "FileNotFoundError", "PermissionError",
            "OSError:EBADF", "OSError:EINVAL", "[a:0x2001]", "[s:0x2001]", "[a:0x10]", "[r:0x10]", "true", "false",
        ] {
            #expect(outcomes.contains(expected), "no scenario gives \(expected)")
        }
    }

    private func describe(_ step: [Any]) -> String {
        "[" + step.map { "\($0)" }.joined(separator: ", ") + "]"
    }
}
