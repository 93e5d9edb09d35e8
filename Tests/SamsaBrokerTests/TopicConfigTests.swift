import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Testing
@testable import SamsaBroker

/// CreateTopics' configs: validated, stored in the data directory, applied to the topic's logs and
/// produce path, shown by DescribeConfigs, kept across restarts.
@Suite("Broker topic configs")
struct TopicConfigTests {
    static func create(_ name: String, configs: [(String, String?)], on connection: TestConnection) async throws -> CreateTopicsResponse.CreatableTopicResult {
        var topic = CreateTopicsRequest.CreatableTopic()
        topic.name = name
        topic.numPartitions = 2
        topic.replicationFactor = -1
        topic.configs = configs.map { name, value in
            var config = CreateTopicsRequest.CreatableTopicConfig()
            config.name = name
            config.value = value
            return config
        }
        var request = CreateTopicsRequest()
        request.topics = [topic]
        return try #require(try await connection.request(request, version: 5, expecting: CreateTopicsResponse.self).topics.first)
    }

    static func describe(_ name: String, on connection: TestConnection) async throws -> [String: DescribeConfigsResponse.DescribeConfigsResourceResult] {
        var resource = DescribeConfigsRequest.DescribeConfigsResource()
        resource.resourceType = 2
        resource.resourceName = name
        resource.configurationKeys = nil
        var request = DescribeConfigsRequest()
        request.resources = [resource]
        let response = try await connection.request(request, version: 4, expecting: DescribeConfigsResponse.self)
        return Dictionary(uniqueKeysWithValues: (response.results.first?.configs ?? []).map { ($0.name, $0) })
    }

    @Test("Topic configs are applied, shown as set by DescribeConfigs and survive a restart")
    func storedAndServed() async throws {
        let first = try await TestBroker.start(flushPolicy: .never)
        var connection = try await TestConnection(port: first.port)
        let settings: [(String, String?)] = [
            ("segment.bytes", "2048"), ("retention.ms", "3600000"), ("retention.bytes", "1000000"), ("max.message.bytes", "300"),
            ("cleanup.policy", "delete"), ("flush.messages", "1"), ("min.insync.replicas", "1"),
        ]
        #expect(try await Self.create("configured", configs: settings, on: connection).errorCode == 0)
        #expect(try await ProduceFetchTests.createTopic("plain", partitions: 1, on: connection).errorCode == 0)

        func check(_ broker: TestBroker, _ connection: TestConnection) async throws {
            let configs = try await Self.describe("configured", on: connection)
            for (name, value) in settings {
                #expect(configs[name]?.value == value, "\(name)")
                #expect(configs[name]?.configSource == 1, "\(name)")  // DYNAMIC_TOPIC_CONFIG (v1+ has no isDefault)
            }
            #expect(configs["segment.ms"]?.configSource == 5)  // DEFAULT_CONFIG
            let plain = try await Self.describe("plain", on: connection)
            #expect(plain["segment.bytes"]?.value == "\(1 << 30)" && plain["segment.bytes"]?.configSource == 5)
            for partition in Int32(0)..<2 {
                let log = try #require(broker.broker.dispatcher.topics.log("configured", partition))
                #expect(log.configuration.segmentBytes == 2048)
                #expect(log.configuration.retentionMilliseconds == 3_600_000 && log.configuration.retentionBytes == 1_000_000)
                #expect(log.configuration.flushPolicy == .everyAppend)
            }
            #expect(broker.broker.dispatcher.topics.log("plain", 0)?.configuration.segmentBytes == 1 << 30)
            // max.message.bytes is the topic's, not the broker's 1 MiB.
            let big = try await ProduceFetchTests.produce([try makeBatch(count: 40)], to: "configured", on: connection)
            #expect(big.errorCode == ErrorCode.messageSizeTooLarge.rawValue)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 40)], to: "plain", on: connection).errorCode == 0)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 1)], to: "configured", on: connection).errorCode == 0)
        }
        try await check(first, connection)
        try await connection.close()
        try await first.stop(keepingData: true)

        let second = try await TestBroker.start(flushPolicy: .never, directory: first.directory)
        connection = try await TestConnection(port: second.port)
        try await check(second, connection)
        try await connection.close()
        try await second.stop()
    }

    @Test("Unknown names, bad and null values, and compaction lags that conflict are INVALID_CONFIG and create nothing")
    func refused() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            let refused: [[(String, String?)]] = [
                [("cleanup.policy", "other")], [("cleanup.policy", "compact,other")], [("cleanup.policy", "")],
                [("min.cleanable.dirty.ratio", "1.5")], [("min.cleanable.dirty.ratio", "nan")], [("delete.retention.ms", "-1")],
                [("max.compaction.lag.ms", "0")], [("min.compaction.lag.ms", "10"), ("max.compaction.lag.ms", "5")],
                [("no.such.config", "1")], [("retention.ms", "soon")], [("min.insync.replicas", "0")], [("segment.bytes", "10")],
                [("segment.bytes", nil)], [("message.timestamp.type", "LogAppendTime")],
            ]
            for (index, configs) in refused.enumerated() {
                let result = try await Self.create("refused-\(index)", configs: configs, on: connection)
                #expect(result.errorCode == ErrorCode.invalidConfig.rawValue, "\(configs)")
                #expect(broker.broker.dispatcher.topics.topic("refused-\(index)") == nil)
            }
            try await connection.close()
        }
    }

    @Test("min.insync.replicas above the one replica refuses acks=all with NOT_ENOUGH_REPLICAS, writing nothing; acks=1 is served")
    func minInsyncOnOneBroker() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await Self.create("strict", configs: [("min.insync.replicas", "2")], on: connection).errorCode == 0)
            let refused = try await ProduceFetchTests.produce([try makeBatch(count: 2)], to: "strict", on: connection)
            #expect(refused.errorCode == ErrorCode.notEnoughReplicas.rawValue)
            #expect(broker.broker.dispatcher.topics.log("strict", 0)?.logEndOffset == 0)
            let served = try await ProduceFetchTests.produce([try makeBatch(count: 2)], to: "strict", acks: 1, on: connection)
            #expect(served.errorCode == 0 && served.baseOffset == 0)
            try await connection.close()
        }
    }
}
