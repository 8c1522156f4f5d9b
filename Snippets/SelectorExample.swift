// The same readiness question asked through select, poll and epoll:
// `swift run SelectorExample`.
import LinuxEpoll
import Selectors

for kind in SelectorKind.allCases {
    let selector = try kind.makeSelector(of: String.self)
    defer { selector.close() }
    let counter = try EventFD()
    try selector.register(counter.fileDescriptor, interest: .read, data: "counter")
    counter.signal()
    for ready in try selector.select(timeout: .seconds(1)) {
        print(kind, ready.key.data, ready.ready)  // "epoll counter read", ...
    }
}
