// The Swift side of the differential test: the same step language as
// PythonEpollDriver, over `Epoll`, with each result rendered as the Python
// driver renders it ("ok", the exception's name, or the polled events).
import CEpollShim
import Foundation
import LinuxEpoll
import SystemPackage
import Syscalls

struct EpollStepRunner {
    private var fds: [String: CInt] = [:]
    /// Open labels, oldest first; a poll names a descriptor by its newest label.
    private var openLabels: [String] = []
    private var epoll: Epoll?

    /// Runs `steps` (decoded JSON arrays whose first element is the step's
    /// name) and returns one result string per step.
    static func run(_ steps: [[Any]]) -> [String] {
        var runner = EpollStepRunner()
        defer { runner.cleanUp() }
        return steps.map { step in
            do {
                return try runner.perform(step[0] as! String, Array(step.dropFirst()))
            } catch let error as EpollError {
                return render(error)
            } catch {
                return "unexpected \(error)"
            }
        }
    }

    /// Python's class name, with the errno's name after `OSError` itself.
    static func render(_ error: EpollError) -> String {
        guard error.pythonException == "OSError", let errno = error.errno else { return error.pythonException }
        return "OSError:" + (errnoNames[errno] ?? "\(errno.rawValue)")
    }

    private static let errnoNames: [Errno: String] = [
        .badFileDescriptor: "EBADF", .invalidArgument: "EINVAL", .noSuchFileOrDirectory: "ENOENT",
        .fileExists: "EEXIST", .notPermitted: "EPERM", .tooManySymbolicLinkLevels: "ELOOP",
        .noSpace: "ENOSPC", .noMemory: "ENOMEM", .tooManyOpenFiles: "EMFILE", .tooManyOpenFilesInSystem: "ENFILE",
    ]

    /// Parses a mask such as `"IN|ET"`; `""` is the empty mask.
    static func mask(_ spec: String) -> Epoll.Events {
        let byName: [Substring: Epoll.Events] = [
            "IN": .in, "PRI": .pri, "OUT": .out, "ERR": .err, "HUP": .hup, "RDNORM": .rdnorm, "RDBAND": .rdband,
            "WRNORM": .wrnorm, "WRBAND": .wrband, "MSG": .msg, "RDHUP": .rdhup, "EXCLUSIVE": .exclusive,
            "ONESHOT": .oneshot, "ET": .et,
        ]
        return spec.split(separator: "|").reduce(into: []) { $0.formUnion(byName[$1]!) }
    }

    private mutating func perform(_ op: String, _ args: [Any]) throws -> String {
        switch op {
        case "epoll":
            epoll?.close()
            epoll = nil
            epoll = try args.isEmpty ? Epoll() : Epoll(sizeHint: args[0] as! Int)
        case "socketpair":
            let (a, b) = try system_socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)).get()
            try add(args[0], a)
            try add(args[1], b)
        case "pipe":
            let pipe = try system_pipe2(O_CLOEXEC).get()
            try add(args[0], pipe.read)
            try add(args[1], pipe.write)
        case "tcp":
            let (client, server) = try makeTCPConnection()
            try add(args[0], client)
            try add(args[1], server)
        case "tempfile":
            try add(args[0], makeRegularFile())
        case "register":
            if args.count > 1 {
                try epoll!.register(fd(args[0]), events: Self.mask(args[1] as! String))
            } else {
                try epoll!.register(fd(args[0]))
            }
        case "modify":
            try epoll!.modify(fd(args[0]), events: Self.mask(args[1] as! String))
        case "unregister":
            try epoll!.unregister(fd(args[0]))
        case "register_epoll_self":
            try epoll!.register(epoll!.fileDescriptor)
        case "register_negative":
            try epoll!.register(-1)
        case "send":
            try writeText(fd(args[0]), args[1] as! String)
        case "recv":
            return "read:\(try readBytes(fd(args[0]), upTo: args[1] as! Int))"
        case "shutdown_wr":
            try system_shutdown(fd(args[0]), CInt(SHUT_WR)).get()
        case "close":
            try system_close(fd(args[0])).get()
            openLabels.removeAll { $0 == args[0] as! String }
        case "close_epoll":
            epoll!.close()
        case "closed":
            return epoll!.isClosed ? "true" : "false"
        case "fileno":
            _ = try epoll!.fileDescriptor
        case "with":
            try epoll!.withScope { _ in }
        case "poll":
            let events = try epoll!.poll(
                timeout: Self.timeout(args[0]), maxEvents: args.count > 1 ? args[1] as! Int : -1)
            let rendered = events.map {
                "\(label(of: $0.fileDescriptor.rawValue)):0x\(String($0.events.rawValue, radix: 16))"
            }
            return "[" + rendered.sorted().joined(separator: ",") + "]"
        default:
            return "unknown step \(op)"
        }
        return "ok"
    }

    /// Milliseconds as JSON gives them (`null`, an integer or a fraction) as a Duration.
    private static func timeout(_ value: Any) -> Duration? {
        if value is NSNull { return nil }
        if let whole = value as? Int { return .milliseconds(whole) }
        return .milliseconds(value as! Double)
    }

    /// Gives `label` a descriptor moved far above the numbers parallel tests
    /// use, so that a label whose descriptor was closed stays closed.
    private mutating func add(_ label: Any, _ fd: CInt) throws {
        let label = label as! String
        fds[label] = try moveAbove(fd, floor: DescriptorFloor.differential)
        openLabels.removeAll { $0 == label }
        openLabels.append(label)
    }

    private func fd(_ label: Any) -> CInt { fds[label as! String]! }

    private func label(of fd: CInt) -> String {
        openLabels.last { fds[$0] == fd } ?? "?\(fd)"
    }

    private mutating func cleanUp() {
        for label in openLabels { _ = system_close(fds[label]!) }
        openLabels = []
        epoll?.close()
    }
}
