import Foundation
import TestSupport

/// `echo-load --json ...` in a child process, and its one-line JSON report.
final class EchoLoadProcess {
    let child: ChildProcess

    /// Starts `echo-load --port PORT --json arguments...`.
    init(port: UInt16, _ arguments: [String]) throws {
        child = try ChildProcess("echo-load", ["--port", "\(port)", "--json"] + arguments)
    }

    /// The report's fields, once the process has exited and its output ended.
    func report() -> [String: Any]? {
        guard waitUntil({ child.output.reachedEnd }),
            let line = child.output.lines.last(where: { $0.hasPrefix("{") }),
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8))
        else { return nil }
        return object as? [String: Any]
    }

    /// A numeric field of the report.
    static func number(_ report: [String: Any], _ key: String) -> Double? {
        (report[key] as? NSNumber)?.doubleValue
    }
}
