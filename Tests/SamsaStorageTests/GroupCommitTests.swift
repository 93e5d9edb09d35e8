import Foundation
import Synchronization
@testable import SamsaStorage
import Testing
import SamsaTestSupport

@Suite("Group commit", .offCooperativePool, .timeLimit(.minutes(3)))
struct GroupCommitTests {
    /// A sync the test releases by hand, so it can be caught between its start and its end.
    final class GatedSync: Sendable {
        let coverage = Mutex(GroupCommit.Coverage(end: 0, generation: 0))
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let calls = Atomic<Int>(0)

        func run() -> GroupCommit.Coverage {
            calls.add(1, ordering: .relaxed)
            let captured = coverage.withLock { $0 }
            started.signal()
            release.wait()
            return captured
        }
    }

    @Test("concurrent requests share one sync; each completes once the sync covers it")
    func coalesces() async throws {
        let gate = GatedSync()
        let commit = GroupCommit(label: "test", durableEnd: 0) { gate.run() }
        gate.coverage.withLock { $0.end = 10 }
        let done = Mutex<[Int64]>([])
        commit.whenDurable(5) { error in #expect(error == nil); done.withLock { $0.append(5) } }
        gate.started.wait()  // the first sync covers 10
        commit.whenDurable(8) { error in #expect(error == nil); done.withLock { $0.append(8) } }
        commit.whenDurable(20) { error in #expect(error == nil); done.withLock { $0.append(20) } }
        gate.coverage.withLock { $0.end = 20 }
        gate.release.signal()
        gate.started.wait()  // one more sync, for 20
        gate.release.signal()
        while done.withLock({ $0.count }) < 3 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(done.withLock { $0 }.sorted() == [5, 8, 20])
        #expect(gate.calls.load(ordering: .relaxed) == 2)
        #expect(commit.durableEnd == 20)
    }

    @Test("a sync that began before a truncation cannot raise the durable end past the cut")
    func generationFencesStaleSync() async throws {
        let gate = GatedSync()
        let commit = GroupCommit(label: "test", durableEnd: 0) { gate.run() }
        gate.coverage.withLock { $0 = GroupCommit.Coverage(end: 50, generation: commit.generation) }
        let firstDone = DispatchSemaphore(value: 0)
        commit.whenDurable(50) { _ in firstDone.signal() }
        gate.started.wait()
        // The log is cut to 20 while that sync runs; it then appends up to 40.
        commit.truncated(to: 20)
        gate.coverage.withLock { $0 = GroupCommit.Coverage(end: 40, generation: commit.generation) }
        gate.release.signal()
        firstDone.wait()
        #expect(commit.durableEnd <= 20, "the stale sync covered offsets that the cut removed")
        let second = DispatchSemaphore(value: 0)
        commit.whenDurable(40) { error in #expect(error == nil); second.signal() }
        gate.started.wait()
        gate.release.signal()
        second.wait()
        #expect(commit.durableEnd == 40)
    }

    @Test("a truncation fails the waiters whose offsets it removed")
    func truncationFailsRemovedWaiters() async throws {
        let gate = GatedSync()
        let commit = GroupCommit(label: "test", durableEnd: 0) { gate.run() }
        gate.coverage.withLock { $0 = GroupCommit.Coverage(end: 50, generation: commit.generation) }
        let outcome = Mutex<StorageError?>(nil)
        let done = DispatchSemaphore(value: 0)
        commit.whenDurable(50) { error in outcome.withLock { $0 = error }; done.signal() }
        gate.started.wait()
        commit.truncated(to: 20)
        done.wait()
        #expect(outcome.withLock { $0 }?.code == .truncated)
        gate.release.signal()
    }

    @Test("every-append after a truncation: new appends are acknowledged only after a sync, and survive a power cut")
    func truncationThenAppendsUnderEveryAppend() async throws {
        let dir = try TemporaryDirectory()
        let files = FaultInjectingFileSystem()
        let configuration = LogConfiguration(flushPolicy: .everyAppend)
        do {
            let (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration, files: files)
            for _ in 0..<10 { try await log.append(try testBatch(offset: 0)) }
            #expect(log.logEndOffset == 50 && log.flushedOffset == 50)
            try log.truncate(to: 20)
            #expect(log.flushedOffset == 20)
            let syncsBefore = files.syncCalls
            for _ in 0..<4 { try await log.append(try testBatch(offset: 0)) }
            #expect(log.logEndOffset == 40 && log.flushedOffset == 40)
            #expect(files.syncCalls > syncsBefore, "appends were acknowledged without any fdatasync")
        }
        files.simulatePowerCut()
        let (reopened, _) = try PartitionLog.open(directory: dir.path, configuration: configuration, files: files)
        #expect(try readAll(reopened) == Array(0..<40))
    }
}
