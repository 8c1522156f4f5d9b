// The whole `Epoll` API in one runnable page: `swift run EpollExample`.
import LinuxEpoll

// select.epoll()
let epoll = try Epoll()
defer { epoll.close() }

// An eventfd is the simplest thing to watch: readable while its counter is non-zero.
let counter = try EventFD()

// epoll.register(fd, select.EPOLLIN)
try epoll.register(counter.fileDescriptor, events: .in)

// Nothing is ready yet: poll(0) returns an empty list at once.
print("before:", try epoll.poll(timeout: .zero))

counter.signal()

// for fd, event in epoll.poll(1): ...
for event in try epoll.poll(timeout: .seconds(1)) {
    // Test flags with `contains`, never `==`.
    if event.events.contains(.in) {
        print("ready:", event, "counter:", counter.reset() ?? 0)
    }
}

// A loop that polls often reuses one buffer and allocates nothing.
let buffer = Epoll.EventBuffer(capacity: 64)
counter.signal(2)
try epoll.poll(into: buffer, timeout: .milliseconds(100))
print("buffer:", buffer.map(\.description))

// epoll.modify(fd, select.EPOLLIN | select.EPOLLONESHOT), then epoll.unregister(fd)
try epoll.modify(counter.fileDescriptor, events: [.in, .oneshot])
try epoll.unregister(counter.fileDescriptor)

// Errors are typed and name the Python exception they match.
do {
    try epoll.unregister(counter.fileDescriptor)
} catch {
    print("unregister twice:", error, "- Python raises", error.pythonException)
}
