// An event loop with a timer, a repeating timer, and work sent from another
// thread: `swift run EventLoopExample`.
import Reactor
import Selectors
import Synchronization

let loop = try EventLoop(selector: try EpollSelector<Int>())
var ticks = 0
let tick = loop.scheduleRepeating(every: .milliseconds(20)) { ticks += 1 }
loop.schedule(after: .milliseconds(110)) {
    loop.cancel(tick)
    print("ticks after 110 ms:", ticks)
}

// Another thread can only talk to the loop through its Sendable handle.
let handle = loop.handle
let worker = Thread {
    handle.execute { _ in print("hello from another thread, run on the loop") }
    handle.stop()
}
loop.schedule(after: .milliseconds(150)) { worker.start() }
try loop.run()
print("stopped")

/// A minimal thread, so that the example needs no Foundation.
final class Thread: Sendable {
    private let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    func start() {
        Task.detached { self.body() }
    }
}
