import CEpollShim
import Dispatch
import Foundation
import LinuxEpoll
import Selectors
import Syscalls
import SystemPackage
import TestSupport
import Testing

@testable import Reactor

/// A source of the test's own: counts what it is told.
final class CountingSource: EventSource {
    var calls = 0
    var last: Interest = []
    override func handle(_ ready: Interest) {
        calls += 1
        last = ready
    }
}

@Suite("The loop's registration table", .timeLimit(.minutes(1)))
struct RegistrationTests {
    @Test("a source of your own is called with what is ready")
    func ownSourceIsCalled() throws {
        let loop = try makeLoop()
        let ready = try EventFD()
        let source = CountingSource()
        let id = try loop.register(source, fileDescriptor: ready.fileDescriptor, interest: .read)
        defer { loop.unregister(id) }
        ready.signal()
        #expect(try drive(loop, timeout: .seconds(30)) { source.calls > 0 })
        #expect(source.last == .read)
        #expect(loop.interest(of: id) == .read)
    }

    @Test("a stale SourceID touches nothing, even once its slot and descriptor number are reused")
    func staleIDCannotTouchAReusedSlot() throws {
        let loop = try makeLoop()
        let first = try EventFD()
        let number = first.fileDescriptor
        let old = try loop.register(CountingSource(), fileDescriptor: number, interest: .read)
        loop.unregister(old)
        // A new file under the old number: dup3 puts the second eventfd's
        // file there in one step (closing the first's), so no other test's
        // thread can take the number in between; `first` now owns that
        // number for the second file, and closes it at the end.
        let second = try EventFD()
        try #require(
            system_dup3(second.fileDescriptor.rawValue, number.rawValue) == .success(number.rawValue),
            "dup3 could not reuse the descriptor number")
        let source = CountingSource()
        let new = try loop.register(source, fileDescriptor: number, interest: .read)
        #expect(new.fileDescriptor == old.fileDescriptor && new.slot == old.slot)
        #expect(new != old, "the new registration has the old one's id")

        loop.unregister(old)  // stale: ignored
        #expect(loop.interest(of: new) == .read, "a stale unregister removed the new registration")
        #expect(loop.interest(of: old) == nil)
        #expect(throws: SelectorError.self) { try loop.setInterest(old, []) }
        #expect(loop.interest(of: new) == .read, "a stale setInterest changed the new registration")
        second.signal()
        #expect(try drive(loop, timeout: .seconds(30)) { source.calls > 0 })
        loop.unregister(new)
        #expect(loop.sourceCount == 1)
    }

    @Test("the interest lives in the selector: silencing a source removes its key, waking it adds it back")
    func interestIsTheSelectors() throws {
        let loop = try makeLoop()
        let ready = try EventFD()
        let source = CountingSource()
        let id = try loop.register(source, fileDescriptor: ready.fileDescriptor, interest: [])
        #expect(loop.interest(of: id) == [])
        ready.signal()
        try loop.runOnce(timeout: .zero)
        #expect(source.calls == 0, "a silent source was called")
        try loop.setInterest(id, .read)
        #expect(loop.interest(of: id) == .read)
        #expect(try drive(loop, timeout: .seconds(30)) { source.calls > 0 })
        loop.unregister(id)
        #expect(loop.interest(of: id) == nil)
    }

    /// Debug builds stop a program that calls the loop from another thread
    /// while the loop runs. The child process runs the loop; inside one of
    /// its iterations, another thread calls `enqueue`.
    @Test("in a debug build, a call from another thread while the loop runs stops the program")
    func offThreadCallStopsTheProgram() async {
        #if DEBUG
            await #expect(processExitsWith: .failure) {
                let loop = try makeLoop()
                let shared = Unchecked(loop)
                loop.schedule(after: .zero) {
                    let done = DispatchSemaphore(value: 0)
                    Thread {
                        shared.value.enqueue {}  // from the wrong thread: stops the program
                        done.signal()
                    }.start()
                    _ = done.wait(timeout: .now() + 60)
                    shared.value.stop()
                }
                try loop.run()
            }
        #endif
    }

    @Test("a call from another thread while the loop does not run is fine: it is handed over")
    func handOverWhileNotRunning() throws {
        let loop = try makeLoop()
        let shared = Unchecked(loop)
        let thread = Background { _ = shared.value.schedule(after: .seconds(60)) {} }
        try thread.join()
        #expect(loop.timerCount == 1)
    }
}
