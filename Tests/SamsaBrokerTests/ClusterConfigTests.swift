import Foundation
import SamsaProtocol
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// Config changes in a cluster: written to coordination through any broker and applied live by every
/// broker through its watches (topic configs, and the cluster-default and per-broker dynamic configs).
@Suite("Cluster config changes", .timeLimit(.minutes(2)))
struct ClusterConfigTests {
    @Test("A topic config changed through one broker is in force on every broker and described alike by each")
    func topicConfigEverywhere() async throws {
        let cluster = try await TestCluster.start()
        do {
            let first = try await cluster.connection(1)
            #expect(try await first.createTopic("events", partitions: 2, replicationFactor: 3, configs: ["retention.ms": "60000"]).errorCode == 0)
            _ = try await cluster.settled("events")
            let changed = try await AlterConfigsTests.incremental(
                [(2, "events", [("retention.ms", .delete, nil), ("segment.bytes", .set, "4096"), ("max.message.bytes", .set, "500")])], on: first)
            #expect(changed.map(\.errorCode) == [0])
            try await eventually("every broker reconfigured its logs") {
                cluster.running.allSatisfy { id in
                    (0..<2).allSatisfy { partition in
                        let configuration = cluster.log(id, "events", Int32(partition))?.configuration
                        return configuration?.segmentBytes == 4096 && configuration?.retentionMilliseconds == nil
                    }
                }
            }
            for id in cluster.running {
                let connection = try await cluster.connection(id)
                let described = AlterConfigsTests.values(try await AlterConfigsTests.describe(2, "events", on: connection))
                #expect(described["segment.bytes"] == "4096" && described["max.message.bytes"] == "500", "broker \(id)")
                #expect(described["retention.ms"] == "-1", "broker \(id)")
                try await connection.close()
            }
            // The produce path of the leader refuses what the new max.message.bytes does not allow.
            let state = try await cluster.settled("events")
            let leader = try await cluster.connection(state.leader)
            try await eventually("the leader refuses a large batch") {
                (try? await ProduceFetchTests.produce([try makeBatch(count: 40)], to: "events", on: leader).errorCode) == ErrorCode.messageSizeTooLarge.rawValue
            }
            let refused = try await AlterConfigsTests.incremental([(2, "events", [("segment.bytes", .set, "1")])], on: first)
            #expect(refused.map(\.errorCode) == [ErrorCode.invalidConfig.rawValue])
            try await leader.close()
            try await first.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    @Test("The cluster-default dynamic config reaches every broker; one broker's own config only that broker; a broker started later applies both")
    func brokerConfigs() async throws {
        let cluster = try await TestCluster.start(brokers: 2)
        do {
            let first = try await cluster.connection(1)
            #expect(try await first.createTopic("events", replicationFactor: 2).errorCode == 0)
            _ = try await cluster.settled("events")
            #expect(try await AlterConfigsTests.incremental([(4, "", [("log.segment.bytes", .set, "8192")])], on: first).map(\.errorCode) == [0])
            #expect(try await AlterConfigsTests.incremental([(4, "1", [("log.retention.ms", .set, "5000")])], on: first).map(\.errorCode) == [0])
            // Another broker's own configs are that broker's to change (Kafka's rule).
            let elsewhere = try await AlterConfigsTests.incremental([(4, "2", [("log.retention.ms", .set, "5000")])], on: first)
            #expect(elsewhere.map(\.errorCode) == [ErrorCode.invalidRequest.rawValue])
            try await eventually("both brokers have the default, broker 1 its own") {
                cluster.log(1, "events")?.configuration.segmentBytes == 8192 && cluster.log(2, "events")?.configuration.segmentBytes == 8192
                    && cluster.log(1, "events")?.configuration.retentionMilliseconds == 5000
            }
            #expect(cluster.log(2, "events")?.configuration.retentionMilliseconds == nil)
            try await first.close()

            try await cluster.start(3)
            // Broker 3 holds no replica of "events" (a broker holds only the partitions assigned to it): its base settings.
            try await eventually("the new broker applied the cluster default") {
                cluster.broker(3)?.dispatcher.topics.baseConfiguration.segmentBytes == 8192
            }
            let third = try await cluster.connection(3)
            let described = try await AlterConfigsTests.describe(2, "events", on: third)
            let entry = described.configs.first { $0.name == "segment.bytes" }
            #expect(entry?.value == "8192" && entry?.configSource == ConfigSource.dynamicDefaultBroker.rawValue)
            try await third.close()
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }
}
