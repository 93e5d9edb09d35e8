import Foundation
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// The committed-offsets log is compacted: it stays near the size of the live commits, and every
/// compaction, even one running while commits are written, replays to the latest commit of each key.
@Suite("Committed offsets log compaction")
struct OffsetStoreCompactionTests {
    /// A new data directory (the broker makes it before it opens the store).
    static func temporaryDirectory() throws -> String {
        let path = temporaryPath("samsa-offsets")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    static func commit(_ store: CommittedOffsetLog, group: String, partition: Int32, offset: Int64) async throws {
        let commits = [(CommittedOffsetLog.Key(group: group, topic: "t", partition: partition), CommittedOffsetLog.Committed(offset: offset, leaderEpoch: 3, metadata: "m\(offset)"))]
        try await store.publish(try store.write(commits.map { ($0.0, $0.1) }))
    }

    @Test("Many commits to a few keys: compacted, the log stays small and reopens to the latest commits")
    func compactionBoundsTheLog() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CommittedOffsetLog.open(dataDirectory: directory, segmentBytes: 4096, compactionBytes: 16384)
        var compactions = 0
        for round in 1...2000 {
            try await Self.commit(store, group: "g\(round % 3)", partition: Int32(round % 4), offset: Int64(round))
            if store.compactionDue, try store.compact() != nil { compactions += 1 }
        }
        #expect(compactions > 5)
        try store.close()
        let reopened = try CommittedOffsetLog.open(dataDirectory: directory, segmentBytes: 4096, compactionBytes: 16384)
        defer { try? reopened.close() }
        for round in 1989...2000 {
            let key = CommittedOffsetLog.Key(group: "g\(round % 3)", topic: "t", partition: Int32(round % 4))
            #expect(reopened.committed(key) == CommittedOffsetLog.Committed(offset: Int64(round), leaderEpoch: 3, metadata: "m\(round)"))
        }
        let bytes = try FileManager.default.subpathsOfDirectory(atPath: "\(directory)/\(CommittedOffsetLog.directoryName)")
            .filter { $0.hasSuffix(".log") }
            .reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: "\(directory)/\(CommittedOffsetLog.directoryName)/\($1)")[.size] as? Int) ?? 0) }
        // 2000 commits of ~60 bytes uncompacted would be > 100 KiB.
        #expect(bytes < 48 * 1024, "\(bytes) bytes of offsets log")
    }

    @Test("A key committed again after a compaction copied it keeps the new commit")
    func newerCommitBeatsCopy() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CommittedOffsetLog.open(dataDirectory: directory, segmentBytes: 4096, compactionBytes: 0)
        try await Self.commit(store, group: "g", partition: 0, offset: 1)
        try await Self.commit(store, group: "g", partition: 1, offset: 1)
        #expect(try store.compact() == 2)
        try await Self.commit(store, group: "g", partition: 0, offset: 2)
        #expect(try store.compact() == 2)
        try await Self.commit(store, group: "g", partition: 1, offset: 5)
        try store.close()
        let reopened = try CommittedOffsetLog.open(dataDirectory: directory, segmentBytes: 4096, compactionBytes: 0)
        defer { try? reopened.close() }
        #expect(reopened.committed(CommittedOffsetLog.Key(group: "g", topic: "t", partition: 0))?.offset == 2)
        #expect(reopened.committed(CommittedOffsetLog.Key(group: "g", topic: "t", partition: 1))?.offset == 5)
    }

    @Test("A commit written while a compaction copies an older commit of its key wins after a reopen")
    func commitDuringCompactionWins() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CommittedOffsetLog.open(dataDirectory: directory, segmentBytes: 4096, compactionBytes: 0)
        try await Self.commit(store, group: "g", partition: 0, offset: 1)
        let key = CommittedOffsetLog.Key(group: "g", topic: "t", partition: 0)
        // Lands after the sealed segment and before the copy of offset 1.
        try store.compact(afterSealing: { _ = try store.write([(key, CommittedOffsetLog.Committed(offset: 2, leaderEpoch: 0, metadata: nil))]) })
        try store.close()
        let reopened = try CommittedOffsetLog.open(dataDirectory: directory, segmentBytes: 4096, compactionBytes: 0)
        defer { try? reopened.close() }
        #expect(reopened.committed(key)?.offset == 2)
    }

    @Test("Compactions running while four writers commit lose no commit")
    func compactionDuringCommits() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CommittedOffsetLog.open(dataDirectory: directory, segmentBytes: 4096, compactionBytes: 0)
        let commits = 300
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for offset in 1...commits { try await Self.commit(store, group: "w\(writer)", partition: Int32(writer), offset: Int64(offset)) }
                }
            }
            group.addTask {
                for _ in 0..<40 { _ = try store.compact() }
            }
            try await group.waitForAll()
        }
        for writer in 0..<4 {
            #expect(store.committed(CommittedOffsetLog.Key(group: "w\(writer)", topic: "t", partition: Int32(writer)))?.offset == Int64(commits))
        }
        try store.close()
        let reopened = try CommittedOffsetLog.open(dataDirectory: directory, segmentBytes: 4096, compactionBytes: 0)
        defer { try? reopened.close() }
        for writer in 0..<4 {
            #expect(reopened.committed(CommittedOffsetLog.Key(group: "w\(writer)", topic: "t", partition: Int32(writer)))?.offset == Int64(commits))
        }
    }
}
