import Dispatch
import Foundation
import CEpollShim
import LinuxEpoll
import Selectors
import Syscalls
import SystemPackage
import TestSupport
import Testing

@testable import Reactor

/// A loop on epoll with every diagnostic on, reporting into `reports`.
private func diagnosedLoop(_ reports: Reports, busyLoopThreshold: Int = 64) throws -> Loop {
    try Loop(
        selector: try EpollSelector<Int>(),
        options: LoopOptions(
            diagnostics: LoopDiagnostics(busyLoopThreshold: busyLoopThreshold, report: reports.report)))
}

/// A connected pair of Unix stream sockets, both non-blocking.
private func socketPair() throws -> (CInt, CInt) {
    let pair = try system_socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue)).get()
    return pair
}

@Suite("Loop diagnostics: slow handlers and busy loops, reported once", .timeLimit(.minutes(2)))
struct LoopDiagnosticsTests {
    @Test("a handler that sleeps 200 ms is reported with its source and how long it ran")
    func slowHandlerIsReported() throws {
        let reports = Reports()
        let loop = try diagnosedLoop(reports)
        let ready = try EventFD()
        let id = try loop.register(
            SleepingSource(ready, sleep: .milliseconds(200)), fileDescriptor: ready.fileDescriptor, interest: .read)
        defer { loop.unregister(id) }
        ready.signal()
        #expect(try drive(loop) { !reports.all.isEmpty })
        let all = reports.all
        try #require(all.count == 1, "expected one report, got \(all)")
        guard case .slowHandler(let source, let duration) = all[0] else {
            Issue.record("not a slow-handler report: \(all[0])")
            return
        }
        #expect(source == "SleepingSource on descriptor \(ready.fileDescriptor.rawValue)")
        #expect(duration >= .milliseconds(200))
        #expect("\(all[0])".contains("SleepingSource"))
    }

    @Test("a slow job is reported with the file and line that enqueued it, a slow timer as a timer")
    func slowJobAndTimerAreReported() throws {
        let reports = Reports()
        let loop = try diagnosedLoop(reports)
        let line = #line + 1
        loop.enqueue { Thread.sleep(forTimeInterval: 0.15) }
        loop.schedule(after: .zero) { Thread.sleep(forTimeInterval: 0.15) }
        #expect(try drive(loop) { reports.all.count >= 2 })
        let sources = reports.all.compactMap { report -> String? in
            if case .slowHandler(let source, _) = report { return source }
            return nil
        }
        #expect(sources.contains("a job enqueued at ReactorTests/LoopDiagnosticsTests.swift:\(line)"), "\(sources)")
        #expect(sources.contains("a timer"), "\(sources)")
    }

    @Test("a level-triggered socket nobody drains is reported once, with its descriptor, and never again")
    func undrainedDescriptorIsReportedOnce() throws {
        let reports = Reports()
        let loop = try diagnosedLoop(reports)
        let (watched, peer) = try socketPair()
        defer {
            _ = system_close(watched)
            _ = system_close(peer)
        }
        let source = IgnoringSource()
        let id = try loop.register(source, fileDescriptor: FileDescriptor(rawValue: watched), interest: .read)
        defer { loop.unregister(id) }
        try sendAll(Array("never read\n".utf8), to: peer)
        // Far more wake-ups than the threshold: one report, not one per wake-up.
        #expect(try drive(loop) { source.calls >= 1_000 })
        let all = reports.all
        try #require(all.count == 1, "expected one report, got \(all)")
        #expect(
            all[0]
                == .busyLoop(
                    source: "IgnoringSource", fileDescriptor: watched, wakeups: 64, reason: .noProgress(unread: 11)))
    }

    @Test("twenty descriptors undrained at once: at most one report a second, each descriptor at most once")
    func reportsAreRateLimited() throws {
        let reports = Reports()
        let loop = try diagnosedLoop(reports)
        var pairs: [(CInt, CInt)] = []
        var ids: [SourceID] = []
        let source = IgnoringSource()
        defer {
            for id in ids { loop.unregister(id) }
            for (a, b) in pairs {
                _ = system_close(a)
                _ = system_close(b)
            }
        }
        for _ in 0..<20 {
            let pair = try socketPair()
            pairs.append(pair)
            ids.append(try loop.register(source, fileDescriptor: FileDescriptor(rawValue: pair.0), interest: .read))
            try sendAll(Array("x".utf8), to: pair.1)
        }
        let start = now()
        // Until two reports have left: the second a second or more after the first.
        #expect(try drive(loop, timeout: .seconds(60)) { reports.all.count >= 2 })
        let elapsed = now() - start
        let all = reports.all
        #expect(Duration.seconds(all.count - 1) <= elapsed, "\(all.count) reports in \(elapsed)")
        let descriptors = all.compactMap { report -> CInt? in
            if case .busyLoop(_, let fd, _, _) = report { return fd }
            return nil
        }
        #expect(Set(descriptors).count == descriptors.count, "a descriptor was reported twice: \(descriptors)")
    }

    @Test("write interest left on with nothing to write is reported")
    func writeInterestWithNothingToWriteIsReported() throws {
        let reports = Reports()
        let loop = try diagnosedLoop(reports)
        let (watched, peer) = try socketPair()
        defer {
            _ = system_close(watched)
            _ = system_close(peer)
        }
        let source = IgnoringSource()
        let id = try loop.register(source, fileDescriptor: FileDescriptor(rawValue: watched), interest: .write)
        defer { loop.unregister(id) }
        #expect(try drive(loop) { !reports.all.isEmpty })
        #expect(
            reports.all == [
                .busyLoop(
                    source: "IgnoringSource", fileDescriptor: watched, wakeups: 64, reason: .noProgress(unread: 0))
            ])
    }

    @Test("a descriptor closed without unregistering, its file kept open by a duplicate, is reported as closed")
    func closedBehindTheLoopsBackIsReported() throws {
        let reports = Reports()
        let loop = try diagnosedLoop(reports)
        let (low, peer) = try socketPair()
        // A number near the descriptor limit, which the tests running beside
        // this one (they take the lowest free numbers) do not reach: once
        // closed, it stays free, so what the loop probes is the closed number.
        let limit = try system_getrlimit(CInt(RLIMIT_NOFILE.rawValue)).get().soft
        let watched = try system_fcntl(low, F_DUPFD_CLOEXEC, CInt(min(limit, 1 << 20)) - 64).get()
        _ = system_close(low)
        let duplicate = dup(watched)
        try #require(duplicate >= 0, "dup failed")
        defer {
            _ = system_close(duplicate)
            _ = system_close(peer)
        }
        let source = IgnoringSource()
        let id = try loop.register(source, fileDescriptor: FileDescriptor(rawValue: watched), interest: .read)
        defer { loop.unregister(id) }
        try sendAll(Array("x".utf8), to: peer)
        // Closed behind the loop's back: the kernel keeps reporting the file.
        _ = system_close(watched)
        #expect(try drive(loop) { !reports.all.isEmpty })
        #expect(
            reports.all == [
                .busyLoop(
                    source: "IgnoringSource", fileDescriptor: watched, wakeups: 64, reason: .closedWhileRegistered)
            ])
    }

    @Test("a descriptor that is drained, every time, is never reported")
    func drainedDescriptorIsSilent() throws {
        let reports = Reports()
        let loop = try diagnosedLoop(reports, busyLoopThreshold: 2)
        let (watched, peer) = try socketPair()
        defer {
            _ = system_close(watched)
            _ = system_close(peer)
        }
        // Reads one byte per wake-up of many waiting: ready in every
        // iteration, and progress in each.
        final class OneByteReader: EventSource {
            let fd: CInt
            var calls = 0
            init(_ fd: CInt) { self.fd = fd }
            override func handle(_ ready: Interest) {
                calls += 1
                var byte: UInt8 = 0
                _ = withUnsafeMutableBytes(of: &byte) { system_read(fd, $0) }
            }
        }
        let source = OneByteReader(watched)
        let id = try loop.register(source, fileDescriptor: FileDescriptor(rawValue: watched), interest: .read)
        defer { loop.unregister(id) }
        try sendAll(Array(repeating: UInt8(ascii: "a"), count: 500), to: peer)
        #expect(try drive(loop) { source.calls >= 500 })
        #expect(reports.all.isEmpty, "\(reports.all)")
    }
}
