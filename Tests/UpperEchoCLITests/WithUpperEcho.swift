import TestSupport
import Foundation

/// Starts `upper-echo --port 0` with the layout's arguments and `arguments`,
/// waits for its port, runs `body`, checks that the server survived it, and
/// always stops the server.
func withUpperEcho(
    _ arguments: [String] = [],
    layout: ServerLayout = .oneLoop,
    descriptorLimit: Int? = nil,
    _ body: (ServerProcess, UInt16) throws -> Void
) throws {
    let server = try ServerProcess(
        "upper-echo", ["--port", "0"] + layout.arguments + arguments, descriptorLimit: descriptorLimit)
    defer { server.stop() }
    guard let port = server.waitForPort() else {
        throw SpawnError(description: "no listening line; stderr: \(server.errors.text)")
    }
    try body(server, port)
    if !server.process.isRunning {
        throw SpawnError(description: "upper-echo died during the test; stderr: \(server.errors.text)")
    }
}
