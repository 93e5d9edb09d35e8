import Foundation
import NIOCore
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// Hostile input is normal input: every API the broker serves, at every version, gets well-framed
/// requests whose bodies are mutated (bytes flipped, counts and lengths set to 0, -1, 2^31-1 and
/// -2^31, cut short, extended), built from a request naming a real topic and group, through the
/// broker's dispatcher. Each must be answered or refused as undecodable within a bound, never trap.
/// Seeded, so a failure repeats: the seed is in the message.
@Suite("Mutated requests of every API", .timeLimit(.minutes(3)))
struct RequestFuzzTests {
    /// Waiting APIs are left out: a mutated JoinGroup/SyncGroup/Fetch may ask to wait minutes, as
    /// Kafka allows (their bounds are tested in the group and fetch suites).
    static let waiting: Set<ApiKey> = [.joinGroup, .syncGroup, .fetch]
    static let mutationsPerVersion = 40

    /// A request of `key` naming topic "t" (2 partitions) and group "g" where it has such fields.
    static func seed(_ key: ApiKey) -> any KafkaMessage {
        switch key {
        case .createPartitions:
            var topic = CreatePartitionsRequest.CreatePartitionsTopic()
            topic.name = "t"
            topic.count = 3
            var assignment = CreatePartitionsRequest.CreatePartitionsAssignment()
            assignment.brokerIds = [0]
            topic.assignments = [assignment]
            var request = CreatePartitionsRequest()
            request.topics = [topic]
            return request
        case .electLeaders:
            var topic = ElectLeadersRequest.TopicPartitions()
            topic.topic = "t"
            topic.partitions = [0, 1]
            var request = ElectLeadersRequest()
            request.topicPartitions = [topic]
            return request
        case .deleteRecords:
            var partition = DeleteRecordsRequest.DeleteRecordsPartition()
            partition.offset = 1
            var topic = DeleteRecordsRequest.DeleteRecordsTopic()
            topic.name = "t"
            topic.partitions = [partition]
            var request = DeleteRecordsRequest()
            request.topics = [topic]
            request.timeoutMs = 1_000
            return request
        case .offsetDelete:
            var topic = OffsetDeleteRequest.OffsetDeleteRequestTopic()
            topic.name = "t"
            topic.partitions = [OffsetDeleteRequest.OffsetDeleteRequestPartition()]
            var request = OffsetDeleteRequest()
            request.groupId = "g"
            request.topics = [topic]
            return request
        case .deleteGroups:
            var request = DeleteGroupsRequest()
            request.groupsNames = ["g", "h"]
            return request
        case .describeLogDirs:
            var topic = DescribeLogDirsRequest.DescribableLogDirTopic()
            topic.topic = "t"
            topic.partitions = [0, 1]
            var request = DescribeLogDirsRequest()
            request.topics = [topic]
            return request
        case .describeProducers:
            var topic = DescribeProducersRequest.TopicRequest()
            topic.name = "t"
            topic.partitionIndexes = [0, 1]
            var request = DescribeProducersRequest()
            request.topics = [topic]
            return request
        case .alterPartitionReassignments:
            var partition = AlterPartitionReassignmentsRequest.ReassignablePartition()
            partition.replicas = [0]
            var topic = AlterPartitionReassignmentsRequest.ReassignableTopic()
            topic.name = "t"
            topic.partitions = [partition]
            var request = AlterPartitionReassignmentsRequest()
            request.topics = [topic]
            return request
        case .incrementalAlterConfigs:
            var config = IncrementalAlterConfigsRequest.AlterableConfig()
            config.name = "retention.ms"
            config.value = "1000"
            var resource = IncrementalAlterConfigsRequest.AlterConfigsResource()
            resource.resourceType = 2
            resource.resourceName = "t"
            resource.configs = [config]
            var request = IncrementalAlterConfigsRequest()
            request.resources = [resource]
            return request
        case .alterConfigs:
            var config = AlterConfigsRequest.AlterableConfig()
            config.name = "segment.bytes"
            config.value = "100000"
            var resource = AlterConfigsRequest.AlterConfigsResource()
            resource.resourceType = 4
            resource.resourceName = "0"
            resource.configs = [config]
            var request = AlterConfigsRequest()
            request.resources = [resource]
            return request
        case .describeConfigs:
            var resource = DescribeConfigsRequest.DescribeConfigsResource()
            resource.resourceType = 2
            resource.resourceName = "t"
            resource.configurationKeys = ["retention.ms"]
            var request = DescribeConfigsRequest()
            request.resources = [resource]
            request.includeSynonyms = true
            return request
        case .createTopics:
            var topic = CreateTopicsRequest.CreatableTopic()
            topic.name = "u"
            topic.numPartitions = 1
            topic.replicationFactor = 1
            var request = CreateTopicsRequest()
            request.topics = [topic]
            return request
        case .deleteTopics:
            var request = DeleteTopicsRequest()
            request.topicNames = ["u"]
            return request
        case .metadata:
            var topic = MetadataRequest.MetadataRequestTopic()
            topic.name = "t"
            var request = MetadataRequest()
            request.topics = [topic]
            return request
        case .describeGroups:
            var request = DescribeGroupsRequest()
            request.groups = ["g"]
            return request
        default:
            return key.requestType.init()
        }
    }

    /// A splitmix64 stream: the same seed, the same mutations.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(1, bound))) }
    }

    /// The request frame (no size prefix) and where its body starts.
    static func frame(_ request: some KafkaMessage, version: Int16) -> (bytes: [UInt8], bodyStart: Int) {
        var framed = KafkaFraming.encodeRequest(request, version: version, correlationId: 7, clientId: "fuzz")
        framed.moveReaderIndex(forwardBy: 4)
        var body = ByteBuffer()
        request.write(into: &body, version: version)
        let bytes = Array(framed.readableBytesView)
        return (bytes, bytes.count - body.readableBytes)
    }

    static func mutate(_ bytes: [UInt8], bodyStart: Int, _ random: inout Random) -> [UInt8] {
        var bytes = bytes
        let span = bytes.count - bodyStart
        switch random.below(5) {
        case 0:  // flip a few bytes
            for _ in 0...random.below(4) where span > 0 { bytes[bodyStart + random.below(span)] ^= UInt8(truncatingIfNeeded: random.next() | 1) }
        case 1:  // an int32 count or length at its limits
            if span >= 4 {
                let at = bodyStart + random.below(span - 3)
                let value = [Int32(0), -1, Int32.max, Int32.min, 1_000_000][random.below(5)]
                withUnsafeBytes(of: value.bigEndian) { for (i, byte) in $0.enumerated() { bytes[at + i] = byte } }
            }
        case 2:  // a varint (compact length) at its limit
            if span >= 5 {
                let at = bodyStart + random.below(span - 4)
                bytes.replaceSubrange(at..<(at + 5), with: [0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
            }
        case 3:  // cut short
            bytes.removeLast(random.below(span + 1))
        default:  // extended with garbage
            bytes += (0..<(1 + random.below(64))).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        }
        return bytes
    }

    @Test("Every API at every version: mutated bodies are answered or refused within a bound, never trap")
    func everyApi() async throws {
        let broker = try await TestBroker.start(maxBrokerPartitions: 64)
        do {
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("t", partitions: 2, on: connection).errorCode == 0)
            try await connection.close()
            let dispatcher = broker.broker.dispatcher
            var answered = 0
            var refused = 0
            for key in SupportedApis.versions.keys.sorted(by: { $0.rawValue < $1.rawValue }) where !Self.waiting.contains(key) {
                let seed = Self.seed(key)
                let versions = SupportedApis.versions[key]!.clamped(to: type(of: seed).validVersions)
                for version in versions {
                    let (bytes, bodyStart) = Self.frame(seed, version: version)
                    var random = Random(state: UInt64(UInt16(bitPattern: key.rawValue)) << 32 | UInt64(UInt16(bitPattern: version)))
                    let seedValue = random.state
                    for round in 0..<Self.mutationsPerVersion {
                        let mutated = Self.mutate(bytes, bodyStart: bodyStart, &random)
                        let frame = ByteBuffer(bytes: mutated)
                        let outcome = try await withThrowingTaskGroup(of: Bool?.self) { group in
                            group.addTask {
                                var trailing = 0
                                do {
                                    _ = try await dispatcher.respond(to: frame, trailingBytes: &trailing)
                                    return true
                                } catch is ProtocolError {
                                    return false
                                }
                            }
                            group.addTask {
                                try await Task.sleep(for: .seconds(10))
                                return nil
                            }
                            let first = try await group.next()!
                            group.cancelAll()
                            return first
                        }
                        guard let outcome else {
                            Issue.record("\(key) v\(version) round \(round) (seed \(seedValue)) was not answered within 10 s")
                            continue
                        }
                        if outcome { answered += 1 } else { refused += 1 }
                    }
                }
            }
            #expect(answered > 0 && refused > 0, "answered \(answered), refused \(refused)")
            // Still serving: a plain request on a new connection.
            let after = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 1)], to: "t", on: after).errorCode == 0)
            try await after.close()
        } catch {
            try await broker.stop()
            throw error
        }
        try await broker.stop()
    }
}
