import Foundation
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// The local offsets log of earlier versions (read once on upgrade, `LegacyOffsets`): its tombstones
/// replay as deletions, win over an older commit whatever the order they were published in, and lose
/// to a newer one.
@Suite("Committed offsets log deletions")
struct CommittedOffsetLogDeletionTests {
    static func temporaryDirectory() throws -> String {
        let path = temporaryPath("samsa-offsets")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

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
        let directory = try Self.temporaryDirectory()
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
        let directory = try Self.temporaryDirectory()
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

    @Test("Deleting 10,000 groups' commits writes batches of at most maxBatchBytes and reopens to none")
    func largeDeletionIsBatched() async throws {
        let directory = try Self.temporaryDirectory()
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
