import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import Testing
@testable import SamsaBroker

/// What one OffsetCommit may write: metadata up to `offset.metadata.max.bytes`, each partition once,
/// at most one bounded batch; and whatever was written reads back when the broker starts again
/// (issue 20, items 2 and 3).
@Suite("Offset commit limits")
struct OffsetCommitLimitTests {
    static func commit(group: String, topic: String, partitions: [(index: Int32, offset: Int64, metadata: String?)]) -> OffsetCommitRequest {
        var request = OffsetCommitRequest()
        request.groupId = group
        request.generationIdOrMemberEpoch = -1
        var entry = OffsetCommitRequest.OffsetCommitRequestTopic()
        entry.name = topic
        entry.partitions = partitions.map { index, offset, metadata in
            var partition = OffsetCommitRequest.OffsetCommitRequestPartition()
            partition.partitionIndex = index
            partition.committedOffset = offset
            partition.committedMetadata = metadata
            return partition
        }
        request.topics = [entry]
        return request
    }

    /// An OffsetFetch of `partitions` of `topic`, in both the single-group (v0-7) and groups (v8+) forms.
    static func fetchRequest(group: String, topic: String, partitions: [Int32]) -> OffsetFetchRequest {
        var fetch = OffsetFetchRequest()
        fetch.groupId = group
        var wanted = OffsetFetchRequest.OffsetFetchRequestTopic()
        wanted.name = topic
        wanted.partitionIndexes = partitions
        fetch.topics = [wanted]
        var fetchGroup = OffsetFetchRequest.OffsetFetchRequestGroup()
        fetchGroup.groupId = group
        var groupTopic = OffsetFetchRequest.OffsetFetchRequestTopics()
        groupTopic.name = topic
        groupTopic.partitionIndexes = partitions
        fetchGroup.topics = [groupTopic]
        fetch.groups = [fetchGroup]
        return fetch
    }

    static func committedOffsets(group: String, topic: String, partitions: [Int32], on connection: TestConnection) async throws -> [Int64] {
        let fetch = Self.fetchRequest(group: group, topic: topic, partitions: partitions)
        let response = try await connection.request(fetch, version: 5, expecting: OffsetFetchResponse.self)
        return response.topics.first?.partitions.map(\.committedOffset) ?? []
    }

    /// The bytes of the `__consumer_offsets` partitions' segments.
    static func offsetsLogBytes(in directory: String) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("\(GroupPlacement.topic)-") }.reduce(0) { sum, partition in
            let root = "\(directory)/\(partition)"
            return sum + (try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasSuffix(".log") }
                .reduce(0) { $0 + ((try FileManager.default.attributesOfItem(atPath: "\(root)/\($1)")[.size] as? Int) ?? 0) })
        }
    }

    @Test("Metadata of 4,096 bytes is committed at every version; 4,097 gets OFFSET_METADATA_TOO_LARGE for its partition only")
    func metadataLimit() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("meta", partitions: 2, on: connection)
            for version in Int16(1)...8 {
                let request = Self.commit(
                    group: "g\(version)", topic: "meta",
                    partitions: [(0, 5, String(repeating: "m", count: 4096)), (1, 6, String(repeating: "é", count: 2049))])
                let response = try await connection.request(request, version: version, expecting: OffsetCommitResponse.self)
                #expect(response.topics.first?.partitions.map(\.errorCode) == [0, ErrorCode.offsetMetadataTooLarge.rawValue], "v\(version)")
                #expect(try await Self.committedOffsets(group: "g\(version)", topic: "meta", partitions: [0, 1], on: connection) == [5, -1])
            }
            try await connection.close()
        }
    }

    @Test("One partition listed 2,200 times with a 32,000-byte group id: written once, and the broker starts again")
    func duplicatePartitionsAndRestart() async throws {
        let broker = try await TestBroker.start()
        var connection = try await TestConnection(port: broker.port)
        _ = try await ProduceFetchTests.createTopic("dup", partitions: 1, on: connection)
        let group = String(repeating: "g", count: 32_000)
        let request = Self.commit(group: group, topic: "dup", partitions: (0..<2200).map { (0, Int64($0), "m") })
        let response = try await connection.request(request, version: 8, expecting: OffsetCommitResponse.self)
        #expect(response.topics.first?.partitions.count == 2200)
        #expect(response.topics.first?.partitions.allSatisfy { $0.errorCode == 0 } == true)
        // The last entry wins; one record of ~32 KB is written, not 2,200 of them (70 MB).
        #expect(try await Self.committedOffsets(group: group, topic: "dup", partitions: [0], on: connection) == [2199])
        let written = try Self.offsetsLogBytes(in: broker.directory)
        #expect(written < 100_000, "\(written) bytes in the offsets log")
        try await connection.close()
        try await broker.stop(keepingData: true)

        let restarted = try await TestBroker.start(directory: broker.directory)
        connection = try await TestConnection(port: restarted.port)
        #expect(try await Self.committedOffsets(group: group, topic: "dup", partitions: [0], on: connection) == [2199])
        try await connection.close()
        try await restarted.stop()
    }

    @Test("A commit that would write more than one bounded batch gets INVALID_COMMIT_OFFSET_SIZE and writes nothing")
    func oversizedCommit() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("wide", partitions: 40, on: connection)
            // 40 records of a 32,000-byte group id: ~1.3 MB, past the 1,048,588-byte batch limit.
            let group = String(repeating: "w", count: 32_000)
            let request = Self.commit(group: group, topic: "wide", partitions: (0..<40).map { (Int32($0), 9, nil) })
            let response = try await connection.request(request, version: 8, expecting: OffsetCommitResponse.self)
            #expect(response.topics.first?.partitions.map(\.errorCode) == Array(repeating: ErrorCode.invalidCommitOffsetSize.rawValue, count: 40))
            #expect(try await Self.committedOffsets(group: group, topic: "wide", partitions: [0, 39], on: connection) == [-1, -1])
            // Fewer partitions fit.
            let smaller = Self.commit(group: group, topic: "wide", partitions: (0..<20).map { (Int32($0), 9, nil) })
            let accepted = try await connection.request(smaller, version: 8, expecting: OffsetCommitResponse.self)
            #expect(accepted.topics.first?.partitions.allSatisfy { $0.errorCode == 0 } == true)
            try await connection.close()
        }
    }
}
