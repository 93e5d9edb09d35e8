import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import SamsaTestSupport
import Testing
@testable import SamsaBroker

/// `__consumer_offsets` on a single broker (a cluster of one: every partition led here, RF 1):
/// made on first use, compacted, offsets expired, and a local offsets log of an earlier version
/// moved into it on upgrade.
@Suite("Groups on __consumer_offsets, single broker")
struct GroupOffsetsTopicTests {
    @Test("The first group request makes __consumer_offsets (50 partitions, RF 1, cleanup.policy=compact); Metadata lists it as internal")
    func madeOnFirstUse() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("t", partitions: 2, on: connection)
            #expect(broker.broker.dispatcher.topics.topic(GroupPlacement.topic) == nil)
            #expect(try await GroupDeletionTests.commit("g", [0: 5], on: connection) == [0])
            let topic = try #require(broker.broker.dispatcher.topics.topic(GroupPlacement.topic))
            #expect(topic.partitionCount == 50)
            let config = broker.broker.dispatcher.topics.config(GroupPlacement.topic)
            #expect(config.overrides["cleanup.policy"] == "compact" && config.overrides["min.insync.replicas"] == "1")
            #expect(try await GroupDeletionTests.committed("g", [0, 1], on: connection) == [5, -1])
            var find = FindCoordinatorRequest()
            find.key = "g"
            let found = try await connection.request(find, version: 3, expecting: FindCoordinatorResponse.self)
            #expect(found.errorCode == 0 && found.nodeId == broker.broker.configuration.brokerId && found.port == Int32(broker.port))
            try await connection.close()
        }
    }

    @Test("The log cleaner compacts a partition: each group's latest offsets survive it and a restart's replay of the cleaned log")
    func compaction() async throws {
        let broker = try await TestBroker.start { settings in
            settings.offsetsTopic.partitions = 1
            settings.offsetsTopic.segmentBytes = 4096
            settings.cleaner.enabled = false  // cleaned below, when the test asks
        }
        var connection = try await TestConnection(port: broker.port)
        _ = try await ProduceFetchTests.createTopic("t", partitions: 4, on: connection)
        for round in 0..<400 {
            #expect(try await GroupDeletionTests.commit("g\(round % 3)", [Int32(round % 4): Int64(round)], on: connection) == [0])
        }
        // A deleted group: its tombstones stay (delete.retention.ms) and its offsets must not come back.
        #expect(try await GroupDeletionTests.commit("gone", [0: 7], on: connection) == [0])
        var delete = DeleteGroupsRequest()
        delete.groupsNames = ["gone"]
        _ = try await connection.request(delete, version: 2, expecting: DeleteGroupsResponse.self)
        let log = try #require(broker.broker.dispatcher.topics.log(GroupPlacement.topic, 0))
        let before = log.sizeInBytes
        let cleaner = broker.broker.dispatcher.logs.cleaner
        let partition = TopicPartition(topic: GroupPlacement.topic, partition: 0)
        let cleaned = await withCheckedContinuation { done in DispatchQueue.global().async { done.resume(returning: cleaner.clean(partition)) } }
        #expect(cleaned)
        #expect(log.sizeInBytes < before / 4, "\(before) bytes before the clean, \(log.sizeInBytes) after")
        #expect(log.logStartOffset == 0, "a clean keeps offsets: the log start stays")
        func expected(_ group: Int) -> [Int64] {
            (0..<4).map { partition in (0..<400).last { $0 % 3 == group && $0 % 4 == partition }.map(Int64.init) ?? -1 }
        }
        for group in 0..<3 { #expect(try await GroupDeletionTests.committed("g\(group)", [0, 1, 2, 3], on: connection) == expected(group)) }
        try await connection.close()
        try await broker.stop(keepingData: true)
        let restarted = try await TestBroker.start(directory: broker.directory) { settings in settings.offsetsTopic.partitions = 1 }
        connection = try await TestConnection(port: restarted.port)
        for group in 0..<3 { #expect(try await GroupDeletionTests.committed("g\(group)", [0, 1, 2, 3], on: connection) == expected(group)) }
        #expect(try await GroupDeletionTests.committed("gone", [0], on: connection) == [-1])
        try await connection.close()
        try await restarted.stop()
    }

    @Test("An __consumer_offsets made without cleanup.policy=compact gets it when its partitions load, durably")
    func existingTopicCompacted() async throws {
        let broker = try await TestBroker.start { settings in settings.offsetsTopic.partitions = 2 }
        var connection = try await TestConnection(port: broker.port)
        _ = try await ProduceFetchTests.createTopic("t", partitions: 1, on: connection)
        #expect(try await GroupDeletionTests.commit("g", [0: 3], on: connection) == [0])
        // What an earlier version made: retention off, no cleanup policy.
        let old: TopicTable.ConfigChange = { _ in TopicConfig(overrides: ["retention.ms": "-1", "retention.bytes": "-1", "flush.messages": "1"]) }
        _ = await broker.broker.dispatcher.topics.alterConfigs([(GroupPlacement.topic, old)])
        #expect(broker.broker.dispatcher.topics.config(GroupPlacement.topic).overrides["cleanup.policy"] == nil)
        try await connection.close()
        try await broker.stop(keepingData: true)
        let restarted = try await TestBroker.start(directory: broker.directory) { settings in settings.offsetsTopic.partitions = 2 }
        connection = try await TestConnection(port: restarted.port)
        #expect(try await GroupDeletionTests.committed("g", [0], on: connection) == [3])
        let topics = restarted.broker.dispatcher.topics
        #expect(topics.config(GroupPlacement.topic).overrides["cleanup.policy"] == "compact")
        #expect(topics.log(GroupPlacement.topic, 0)?.configuration.cleanupPolicy == .compact)
        try await connection.close()
        try await restarted.stop(keepingData: true)
        let stored = try #require(try TopicsFile.read(broker.directory, files: PosixFileSystem()))
        #expect(stored[GroupPlacement.topic]?.configs["cleanup.policy"] == "compact", "kept in topics.json")
        try? FileManager.default.removeItem(atPath: broker.directory)
    }

    @Test("offsets.retention.minutes: a simple consumer's offsets expire after their retention, durably; younger ones stay")
    func expiry() async throws {
        let broker = try await TestBroker.start()
        var connection = try await TestConnection(port: broker.port)
        _ = try await ProduceFetchTests.createTopic("t", partitions: 2, on: connection)
        #expect(try await GroupDeletionTests.commit("old", [0: 1, 1: 2], on: connection) == [0, 0])
        let retention = Int64(broker.broker.configuration.offsetsTopic.retention / .milliseconds(1))
        await broker.broker.dispatcher.groups.expireOffsets(nowMs: WallClock.nowMilliseconds + retention / 2)
        #expect(try await GroupDeletionTests.committed("old", [0, 1], on: connection) == [1, 2])
        // The wall clock moves past old's commit (its timestamp) before young's is taken.
        try await Task.sleep(for: .milliseconds(5))
        let beforeYoung = WallClock.nowMilliseconds
        #expect(try await GroupDeletionTests.commit("young", [0: 3], on: connection) == [0])
        // Old's commits are over `retention` old then; young's not yet.
        await broker.broker.dispatcher.groups.expireOffsets(nowMs: beforeYoung + retention - 1)
        #expect(try await GroupDeletionTests.committed("old", [0, 1], on: connection) == [-1, -1])
        #expect(try await GroupDeletionTests.committed("young", [0], on: connection) == [3])
        try await connection.close()
        try await broker.stop(keepingData: true)
        let restarted = try await TestBroker.start(directory: broker.directory)
        connection = try await TestConnection(port: restarted.port)
        #expect(try await GroupDeletionTests.committed("old", [0, 1], on: connection) == [-1, -1])
        #expect(try await GroupDeletionTests.listed(on: connection) == ["young"])
        try await connection.close()
        try await restarted.stop()
    }

    @Test("Upgrade: a data directory with the old local offsets log starts with every commit in __consumer_offsets; the old log is kept renamed")
    func legacyOffsetsMoved() async throws {
        let directory = temporaryPath("samsa-legacy-offsets")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try await TestBroker.start(directory: directory)
        var connection = try await TestConnection(port: first.port)
        _ = try await ProduceFetchTests.createTopic("t", partitions: 2, on: connection)
        try await connection.close()
        try await first.stop(keepingData: true)
        // What an earlier version left: commits of 60 groups (spread over the partitions) and a deleted one.
        let legacy = try CommittedOffsetLog.open(dataDirectory: directory)
        let commits = (0..<60).map { (CommittedOffsetLog.Key(group: "g\($0)", topic: "t", partition: Int32($0 % 2)), CommittedOffsetLog.Committed?.some(.init(offset: Int64($0) + 100, leaderEpoch: 0, metadata: "m"))) }
        try await legacy.publish(try legacy.write(commits))
        try await legacy.publish(try legacy.write([(CommittedOffsetLog.Key(group: "g0", topic: "t", partition: 0), nil)]))
        try legacy.close()

        let upgraded = try await TestBroker.start(directory: directory)
        connection = try await TestConnection(port: upgraded.port)
        // The first group request makes the topic; its 50 partitions load (each moving its share of the
        // old commits) one after another: wait for them, as a client retries COORDINATOR_LOAD_IN_PROGRESS.
        _ = try await GroupDeletionTests.committed("g1", [0, 1], on: connection)
        _ = await upgraded.broker.dispatcher.groups.loadedShards()
        for index in 1..<60 {
            let wanted: [Int64] = index % 2 == 0 ? [Int64(index) + 100, -1] : [-1, Int64(index) + 100]
            #expect(try await GroupDeletionTests.committed("g\(index)", [0, 1], on: connection) == wanted)
        }
        #expect(try await GroupDeletionTests.committed("g0", [0, 1], on: connection) == [-1, -1])
        // A commit after the upgrade wins over the old one at the next restart.
        #expect(try await GroupDeletionTests.commit("g1", [1: 7], on: connection) == [0])
        try await connection.close()
        try await upgraded.stop(keepingData: true)
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/\(CommittedOffsetLog.directoryName)"))
        #expect(FileManager.default.fileExists(atPath: "\(directory)/\(LegacyOffsets.migratedName)"))

        let again = try await TestBroker.start(directory: directory)
        connection = try await TestConnection(port: again.port)
        #expect(try await GroupDeletionTests.committed("g1", [0, 1], on: connection) == [-1, 7])
        #expect(try await GroupDeletionTests.committed("g2", [0, 1], on: connection) == [102, -1])
        try await connection.close()
        try await again.stop()
    }
}

extension GroupOffsetsTopicTests {
    @Test("__consumer_offsets is internal: Metadata says so, and a client's produce to it gets INVALID_TOPIC_EXCEPTION")
    func internalTopic() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("t", partitions: 1, on: connection)
            #expect(try await GroupDeletionTests.commit("g", [0: 5], on: connection) == [0])
            var metadata = MetadataRequest()
            metadata.topics = nil
            let listed = try await connection.request(metadata, version: 12, expecting: MetadataResponse.self)
            #expect(listed.topics.first { $0.name == GroupPlacement.topic }?.isInternal == true)
            #expect(listed.topics.first { $0.name == "t" }?.isInternal == false)
            var produce = ProduceRequest()
            produce.acks = -1
            produce.timeoutMs = 1000
            var data = ProduceRequest.TopicProduceData()
            data.name = GroupPlacement.topic
            var partition = ProduceRequest.PartitionProduceData()
            partition.index = GroupPlacement.partition(of: "g", partitions: 50)
            var builder = RecordBatchBuilder()
            builder.append(timestamp: 0, key: [0, 9] as [UInt8], value: [1] as [UInt8])
            partition.records = try builder.build().buffer
            data.partitionData = [partition]
            produce.topicData = [data]
            let answer = try await connection.request(produce, version: 9, expecting: ProduceResponse.self)
            #expect(answer.responses.first?.partitionResponses.first?.errorCode == ErrorCode.invalidTopic.rawValue)
            // DeleteRecords of it: INVALID_TOPIC_EXCEPTION, as Kafka; CreateTopics of it: INVALID_REQUEST (it is the coordinator's).
            var delete = DeleteRecordsRequest()
            var deleted = DeleteRecordsRequest.DeleteRecordsTopic()
            deleted.name = GroupPlacement.topic
            var cut = DeleteRecordsRequest.DeleteRecordsPartition()
            cut.partitionIndex = partition.index
            cut.offset = -1
            deleted.partitions = [cut]
            delete.topics = [deleted]
            let refused = try await connection.request(delete, version: 2, expecting: DeleteRecordsResponse.self)
            #expect(refused.topics.first?.partitions.first?.errorCode == ErrorCode.invalidTopic.rawValue)
            #expect(try await ProduceFetchTests.createTopic(GroupPlacement.topic, partitions: 1, on: connection).errorCode == ErrorCode.invalidRequest.rawValue)
            #expect(try await GroupDeletionTests.committed("g", [0], on: connection) == [5])
            try await connection.close()
        }
    }
}

extension GroupOffsetsTopicTests {
    @Test("CreatePartitions (groups would move) and DeleteTopics (every group's offsets) of __consumer_offsets are refused with INVALID_REQUEST")
    func partitionsFixed() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("t", partitions: 1, on: connection)
            #expect(try await GroupDeletionTests.commit("g", [0: 5], on: connection) == [0])
            var grow = CreatePartitionsRequest()
            var topic = CreatePartitionsRequest.CreatePartitionsTopic()
            topic.name = GroupPlacement.topic
            topic.count = 60
            grow.topics = [topic]
            let refused = try await connection.request(grow, version: 3, expecting: CreatePartitionsResponse.self)
            #expect(refused.results.first?.errorCode == ErrorCode.invalidRequest.rawValue)
            #expect(broker.broker.dispatcher.topics.topic(GroupPlacement.topic)?.partitionCount == 50)
            var delete = DeleteTopicsRequest()
            delete.topicNames = [GroupPlacement.topic]
            let kept = try await connection.request(delete, version: 4, expecting: DeleteTopicsResponse.self)
            #expect(kept.responses.first?.errorCode == ErrorCode.invalidRequest.rawValue)
            #expect(broker.broker.dispatcher.topics.topic(GroupPlacement.topic) != nil)
            #expect(try await GroupDeletionTests.committed("g", [0], on: connection) == [5])
            try await connection.close()
        }
    }
}
