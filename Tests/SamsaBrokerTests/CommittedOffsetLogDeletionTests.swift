import Foundation
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// Deleting committed offsets (DeleteGroups, OffsetDelete) writes tombstones: a deletion stays deleted
/// across a reopen and a compaction, wins over an older commit whatever the order they are published
/// or copied in, and loses to a newer one.
@Suite("Committed offsets log deletions")
struct CommittedOffsetLogDeletionTests {
    static func key(_ group: String, _ partition: Int32 = 0) -> CommittedOffsetLog.Key {
        CommittedOffsetLog.Key(group: group, topic: "t", partition: partition)
    }

    static func commit(_ store: CommittedOffsetLog, _ key: CommittedOffsetLog.Key, _ offset: Int64) async throws {
        try await store.publish(try store.write([(key, CommittedOffsetLog.Committed(offset: offset, leaderEpoch: 0, metadata: nil))]))
    }

    static func delete(_ store: CommittedOffsetLog, _ keys: [CommittedOffsetLog.Key]) async throws {
        try await store.publish(try store.write(keys.map { ($0, nil) }))
    }

    @Test("A deleted group's commits are gone, and stay gone after a reopen; other groups' stay")
    func deletionSurvivesReopen() async throws {
        let directory = try OffsetStoreCompactionTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CommittedOffsetLog.open(dataDirectory: directory)
        try await Self.commit(store, Self.key("gone", 0), 5)
        try await Self.commit(store, Self.key("gone", 1), 6)
        try await Self.commit(store, Self.key("kept"), 7)
        try await Self.delete(store, Array(store.committed(group: "gone").keys))
        #expect(store.committed(group: "gone").isEmpty && !store.hasCommits(group: "gone"))
        #expect(store.groupIds() == ["kept"])
        try store.close()
        let reopened = try CommittedOffsetLog.open(dataDirectory: directory)
        defer { try? reopened.close() }
        #expect(!reopened.hasCommits(group: "gone") && reopened.committed(Self.key("gone", 1)) == nil)
        #expect(reopened.committed(Self.key("kept"))?.offset == 7)
    }

    @Test("An older commit published after a deletion does not come back; a newer one does")
    func publicationOrder() async throws {
        let directory = try OffsetStoreCompactionTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CommittedOffsetLog.open(dataDirectory: directory)
        let key = Self.key("g")
        let older = try store.write([(key, CommittedOffsetLog.Committed(offset: 1, leaderEpoch: 0, metadata: nil))])
        let deletion = try store.write([(key, nil)])
        try await store.publish(deletion)
        try await store.publish(older)
        #expect(store.committed(key) == nil && !store.hasCommits(group: "g"))
        try await Self.commit(store, key, 2)
        #expect(store.committed(key)?.offset == 2)
        try store.close()
        let reopened = try CommittedOffsetLog.open(dataDirectory: directory)
        defer { try? reopened.close() }
        #expect(reopened.committed(key)?.offset == 2)
    }

    @Test("A deletion written while a compaction copies an older commit of its key wins after a reopen")
    func deletionDuringCompactionWins() async throws {
        let directory = try OffsetStoreCompactionTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CommittedOffsetLog.open(dataDirectory: directory, segmentBytes: 4096, compactionBytes: 0)
        let key = Self.key("g")
        try await Self.commit(store, key, 1)
        // Lands after the sealed segment and before the copy of offset 1.
        try store.compact(afterSealing: { _ = try store.write([(key, nil)]) })
        try store.close()
        let reopened = try CommittedOffsetLog.open(dataDirectory: directory, segmentBytes: 4096, compactionBytes: 0)
        defer { try? reopened.close() }
        #expect(reopened.committed(key) == nil && !reopened.hasCommits(group: "g"))
    }

    @Test("Compaction drops deleted commits and forgets their tombstones once nothing older is unpublished")
    func compactionForgetsTombstones() async throws {
        let directory = try OffsetStoreCompactionTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CommittedOffsetLog.open(dataDirectory: directory, segmentBytes: 4096, compactionBytes: 0)
        let keys = (0..<100).map { Self.key("g\($0)") }
        for (index, key) in keys.enumerated() { try await Self.commit(store, key, Int64(index)) }
        // A commit written before the deletions and not yet published: the tombstones must outlive
        // the compaction, or it could publish a deleted key back.
        let pending = try store.write([(keys[1], CommittedOffsetLog.Committed(offset: -5, leaderEpoch: 0, metadata: nil))])
        try await Self.delete(store, Array(keys.dropFirst()))
        #expect(store.tombstoneCount == 99)
        #expect(try store.compact() == 1)
        #expect(store.tombstoneCount == 99)
        try await store.publish(pending)
        #expect(store.committed(keys[1]) == nil)
        #expect(try store.compact() == 1)
        #expect(store.tombstoneCount == 0)
        #expect(store.groupIds() == ["g0"])
        try store.close()
        let reopened = try CommittedOffsetLog.open(dataDirectory: directory, segmentBytes: 4096, compactionBytes: 0)
        defer { try? reopened.close() }
        #expect(reopened.groupIds() == ["g0"])
    }

    @Test("Deleting 10,000 groups' commits writes batches of at most maxBatchBytes and reopens to none")
    func largeDeletionIsBatched() async throws {
        let directory = try OffsetStoreCompactionTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CommittedOffsetLog.open(dataDirectory: directory)
        let long = String(repeating: "x", count: 1_000)
        let keys = (0..<10_000).map { Self.key("\(long)\($0)") }
        try await store.publish(try store.write(keys.map { ($0, CommittedOffsetLog.Committed(offset: 1, leaderEpoch: 0, metadata: nil)) }))
        let written = try store.write(keys.map { ($0, nil) })
        // About 10 MB of tombstones: more than one batch, each under the bound.
        #expect(written.changes.count == 10_000 && written.last!.baseOffset > written.changes[0].offset)
        try await store.publish(written)
        #expect(store.groupIds().isEmpty)
        try store.close()
        let reopened = try CommittedOffsetLog.open(dataDirectory: directory)
        defer { try? reopened.close() }
        #expect(reopened.groupIds().isEmpty)
    }
}
