import Foundation
import Syscalls
import TestSupport
import Testing
import UpperEcho

/// Integration tests: the real `upper-echo` executable in a child process,
/// real TCP clients on 127.0.0.1, always `--port 0`. Serialized, nested
/// suites included, because several tests measure the server's CPU time and
/// open a thousand sockets; every wait is bounded.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct UpperEchoCLITests {}

extension UpperEchoCLITests {
    @Suite struct Startup {
        @Test(arguments: ["epoll", "poll", "select"])
        func theOneListeningLineNamesTheBackendAndARoundTripWorks(backend: String) throws {
            try withUpperEcho(["--selector", backend]) { server, port in
                let client = try TestClient(port: port)
                #expect(client.roundTrip("hello, \(backend)!"))
                #expect(server.output.lines == ["listening on 127.0.0.1:\(port) (\(backend))"])
                #expect(port != 0 && port != 8000)
            }
        }

        /// `--api async` says so on the listening line; callbacks are the default.
        @Test func theAsyncAPISaysSoOnTheListeningLine() throws {
            try withUpperEcho(layout: .asyncOneLoop) { server, port in
                let client = try TestClient(port: port)
                #expect(client.roundTrip("hello, async!"))
                #expect(server.output.lines == ["listening on 127.0.0.1:\(port) (epoll, async)"])
            }
            try withUpperEcho(layout: .asyncReusePort) { server, port in
                #expect(server.output.lines == ["listening on 127.0.0.1:\(port) (epoll, 2 loops, reuseport, async)"])
            }
        }

        @Test func epollIsTheDefaultBackend() throws {
            try withUpperEcho { server, _ in
                #expect(server.listeningLine?.backend == "epoll")
            }
        }

        /// With several loops the line says how many, and how they share the
        /// connections; the round trip works under each balance.
        @Test(arguments: ["reuseport", "acceptor", "acceptor-round-robin"])
        func withSeveralLoopsTheListeningLineNamesTheLoopsAndTheBalance(balance: String) throws {
            try withUpperEcho(["--loops", "3", "--balance", balance]) { server, port in
                let client = try TestClient(port: port)
                #expect(client.roundTrip("hello, \(balance)!"))
                #expect(server.output.lines == ["listening on 127.0.0.1:\(port) (epoll, 3 loops, \(balance))"])
            }
        }

        /// Without `--loops`, one loop per CPU the process may run on: under
        /// `taskset -c 0`, one loop, and the line of a single loop.
        @Test func theDefaultIsOneLoopPerCPUOfTheAffinityMask() throws {
            let server = try ServerProcess("upper-echo", ["--port", "0"], cpus: "0")
            defer { server.stop() }
            let port = try #require(server.waitForPort())
            #expect(server.output.lines == ["listening on 127.0.0.1:\(port) (epoll)"])
        }

        @Test(arguments: ServerLayout.everyAPI)
        func aPortInUseIsOneLineOnStandardErrorAndExitStatus1(layout: ServerLayout) throws {
            // A listener of this process holds the port.
            let type = CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)
            let holder = try system_socket(AF_INET, type).get()
            defer { _ = system_close(holder) }
            try system_bind(holder, SocketAddress(host: "127.0.0.1", port: 0)!).get()
            try system_listen(holder, 1).get()
            let port = try system_getsockname(holder).get().port

            let server = try ServerProcess("upper-echo", ["--port", "\(port)"] + layout.arguments)
            defer { server.stop() }
            try #require(server.waitForExit(), "upper-echo is still running on a port in use")
            #expect(server.exited(with: 1))
            #expect(waitUntil { server.errors.reachedEnd && server.output.reachedEnd })
            let message = server.errors.text
            #expect(message.lowercased().contains("address already in use"))
            #expect(message.contains("127.0.0.1:\(port)"))
            #expect(server.errors.lines.count == 1 && message.hasSuffix("\n"), "not one line: \(message)")
            #expect(!message.contains("Fatal error") && !message.contains("backtrace"))
            #expect(server.output.text.isEmpty)
        }

        @Test(arguments: ServerLayout.everyAPI)
        func aHostNameIsResolvedAndServed(layout: ServerLayout) throws {
            try withUpperEcho(["--host", "localhost"], layout: layout) { server, port in
                // localhost is 127.0.0.1 or ::1, whichever the resolver gives first and binds.
                let line = try #require(server.listeningLine)
                #expect(["127.0.0.1", "::1"].contains(line.host), "listening on \(line.host)")
                let client = try TestClient(port: port, host: line.host)
                #expect(client.roundTrip("hello, localhost!"))
            }
        }

        /// A name that does not resolve, and a dotted quad that is no IPv4
        /// address (so it is looked up as a name).
        @Test(arguments: ["nosuch.invalid", "999.1.1.1"])
        func aHostThatDoesNotResolveIsOneLineOnStandardErrorAndExitStatus1(host: String) throws {
            let server = try ServerProcess("upper-echo", ["--host", host, "--port", "0"])
            defer { server.stop() }
            try #require(server.waitForExit())
            #expect(server.exited(with: 1))
            #expect(waitUntil { server.errors.reachedEnd && server.output.reachedEnd })
            let message = server.errors.text
            let prefix = "upper-echo: cannot resolve host \"\(host)\": "
            #expect(message.hasPrefix(prefix) && message.count > prefix.count + 1, "stderr: \(message)")
            #expect(server.errors.lines.count == 1 && message.hasSuffix("\n"), "not one line: \(message)")
            #expect(server.output.text.isEmpty)
        }

        @Test func versionPrintsTheNameAndTheVersion() throws {
            let server = try ServerProcess("upper-echo", ["--version"])
            defer { server.stop() }
            try #require(server.waitForExit())
            #expect(server.exited(with: 0), "\(server.exitReport)")
            #expect(waitUntil { server.errors.reachedEnd && server.output.reachedEnd })
            #expect(server.output.text == "upper-echo \(upperEchoVersion)\n")
            #expect(upperEchoVersion == "0.1.0")
            #expect(server.errors.text.isEmpty)
        }

        /// ArgumentParser's validation failure: exit status 64 (`EX_USAGE`),
        /// the error and the usage on standard error, nothing on standard output.
        @Test(arguments: [
            (["--selector", "kqueue", "--port", "0"], "'kqueue' is invalid for '--selector"),
            (["--port", "70000"], "'70000' is invalid for '--port"),
            (["--bogus", "--port", "0"], "Unknown option '--bogus'"),
            (["--max-connections", "0", "--port", "0"], "--max-connections must be at least 1"),
            (["--idle-timeout", "0", "--port", "0"], "--idle-timeout must be a positive number of seconds"),
            (["--shutdown-grace=-1", "--port", "0"], "--shutdown-grace must be a number of seconds from 0 to 86400"),
            (["--shutdown-grace", "soon", "--port", "0"], "'soon' is invalid for '--shutdown-grace"),
            (["--loops", "0", "--port", "0"], "--loops must be from 1 to 1024"),
            (["--balance", "random", "--port", "0"], "'random' is invalid for '--balance"),
            (["--api", "futures", "--port", "0"], "'futures' is invalid for '--api"),
        ])
        func aBadFlagIsAUsageError(arguments: [String], error: String) throws {
            let server = try ServerProcess("upper-echo", arguments)
            defer { server.stop() }
            try #require(server.waitForExit())
            #expect(server.exited(with: 64))
            #expect(waitUntil { server.errors.reachedEnd })
            #expect(server.errors.text.contains(error), "stderr: \(server.errors.text)")
            #expect(server.errors.text.contains("Usage: upper-echo"))
            #expect(!server.output.text.contains("listening"))
        }
    }
}
