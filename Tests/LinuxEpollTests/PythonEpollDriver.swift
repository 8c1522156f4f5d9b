// The CPython side of the differential test: a small interpreter of the step
// language (see DifferentialTests.swift) over `select.epoll`, run with
// `python3 -c`. It reads the scenarios as JSON on stdin and prints, as JSON,
// one list of result strings per scenario.
import Foundation

enum PythonEpollDriver {
    static let script = #"""
        import errno, json, os, select, socket, sys, tempfile

        def mask(spec):
            value = 0
            for name in filter(None, spec.split("|")):
                value |= getattr(select, "EPOLL" + name)
            return value

        def describe(exc):
            name = type(exc).__name__
            if name == "OSError" and exc.errno is not None:
                return name + ":" + errno.errorcode[exc.errno]
            return name

        def run(steps):
            fds, open_labels, state, out = {}, [], {"ep": None}, []

            def add(label, fd):
                fds[label] = fd
                if label in open_labels:
                    open_labels.remove(label)
                open_labels.append(label)

            def label_of(fd):
                for label in reversed(open_labels):
                    if fds[label] == fd:
                        return label
                return "?%d" % fd

            def step(op, args):
                ep = state["ep"]
                if op == "epoll":
                    if ep is not None:
                        ep.close()
                    state["ep"] = None
                    state["ep"] = select.epoll(*args)
                elif op == "socketpair":
                    a, b = socket.socketpair()
                    add(args[0], a.detach()); add(args[1], b.detach())
                elif op == "pipe":
                    r, w = os.pipe()
                    add(args[0], r); add(args[1], w)
                elif op == "tcp":
                    server = socket.create_server(("127.0.0.1", 0))
                    client = socket.create_connection(server.getsockname())
                    accepted, _ = server.accept()
                    server.close()
                    add(args[0], client.detach()); add(args[1], accepted.detach())
                elif op == "tempfile":
                    fd, path = tempfile.mkstemp()
                    os.unlink(path)
                    add(args[0], fd)
                elif op == "register":
                    if len(args) > 1:
                        ep.register(fds[args[0]], mask(args[1]))
                    else:
                        ep.register(fds[args[0]])
                elif op == "modify":
                    ep.modify(fds[args[0]], mask(args[1]))
                elif op == "unregister":
                    ep.unregister(fds[args[0]])
                elif op == "register_epoll_self":
                    ep.register(ep.fileno())
                elif op == "register_negative":
                    ep.register(-1)
                elif op == "send":
                    os.write(fds[args[0]], args[1].encode())
                elif op == "recv":
                    return "read:%d" % len(os.read(fds[args[0]], args[1]))
                elif op == "shutdown_wr":
                    s = socket.socket(fileno=fds[args[0]])
                    s.shutdown(socket.SHUT_WR)
                    s.detach()
                elif op == "close":
                    os.close(fds[args[0]])
                    open_labels.remove(args[0])
                elif op == "close_epoll":
                    ep.close()
                elif op == "closed":
                    return "true" if ep.closed else "false"
                elif op == "fileno":
                    ep.fileno()
                elif op == "with":
                    with ep:
                        pass
                elif op == "poll":
                    timeout = None if args[0] is None else args[0] / 1000
                    events = ep.poll(timeout, *args[1:])
                    return "[" + ",".join(sorted("%s:0x%x" % (label_of(fd), ev) for fd, ev in events)) + "]"
                else:
                    return "unknown step " + op
                return "ok"

            for s in steps:
                try:
                    out.append(step(s[0], s[1:]))
                except Exception as exc:
                    out.append(describe(exc))
            for label in open_labels:
                os.close(fds[label])
            if state["ep"] is not None:
                state["ep"].close()
            return out

        scenarios = json.load(sys.stdin)
        json.dump({name: run(steps) for name, steps in scenarios.items()}, sys.stdout)
        """#

    /// Runs the script with `python3` from `PATH`, feeds it `input` and
    /// returns what it printed.
    static func run(input: Data) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw DriverError(message: String(decoding: errors, as: UTF8.self))
        }
        return output
    }

    struct DriverError: Error, CustomStringConvertible {
        let message: String
        var description: String { "python3 failed: \(message)" }
    }
}
