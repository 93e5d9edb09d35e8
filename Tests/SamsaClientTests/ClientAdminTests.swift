import NIOCore
import SamsaClient
import SamsaProtocol
import Testing
import SamsaTestSupport

/// CreateTopics, DeleteTopics and Metadata through the client, and the metadata cache's refreshes.
@Suite("Client admin and metadata", .offCooperativePool)
struct ClientAdminTests {
    @Test("Create, list, describe and delete topics; errors come back as broker errors")
    func createListDelete() async throws {
        try await ClientTestBroker.with { broker, client in
            try await client.createTopics([NewTopic(name: "alpha", partitions: 3), NewTopic(name: "beta", partitions: 1, replicationFactor: 1)])
            let topics = try await client.listTopics().filter { !$0.isInternal }
            #expect(topics.map(\.name).contains("alpha") && topics.map(\.name).contains("beta"))
            let alpha = try #require(topics.first { $0.name == "alpha" })
            #expect(alpha.partitions.map(\.partition) == [0, 1, 2])
            #expect(alpha.partitions.allSatisfy { $0.leader == 0 && $0.replicas == [0] && $0.isr == [0] && $0.error == .none })
            await #expect(throws: KafkaClientError.broker(.topicAlreadyExists, nil)) {
                do { try await client.createTopics([NewTopic(name: "alpha", partitions: 1)]) } catch KafkaClientError.broker(let code, _) {
                    throw KafkaClientError.broker(code, nil)
                }
            }
            await #expect(throws: KafkaClientError.broker(.invalidPartitions, nil)) {
                do { try await client.createTopics([NewTopic(name: "gamma", partitions: 0)]) } catch KafkaClientError.broker(let code, _) {
                    throw KafkaClientError.broker(code, nil)
                }
            }
            try await client.deleteTopics(["alpha"])
            #expect(try await client.listTopics().map(\.name).contains("alpha") == false)
            await #expect(throws: KafkaClientError.broker(.unknownTopicOrPartition, nil)) {
                do { try await client.deleteTopics(["alpha"]) } catch KafkaClientError.broker(let code, _) {
                    throw KafkaClientError.broker(code, nil)
                }
            }
        }
    }

    @Test("A topic recreated with more partitions is seen after the cache misses a partition")
    func refreshOnUnknownPartition() async throws {
        try await ClientTestBroker.with { broker, client in
            try await client.createTopics([NewTopic(name: "grow", partitions: 1)])
            let producer = client.makeProducer()
            try await producer.sendAndWait(topic: "grow", partition: 0, value: ByteBuffer(string: "before"))
            #expect(client.cachedMetadata.topics["grow"]?.partitions.count == 1)
            // Another client changes the topic behind this one's cache.
            let admin = try await KafkaClient.connect(bootstrap: broker.bootstrap)
            try await admin.deleteTopics(["grow"])
            try await admin.createTopics([NewTopic(name: "grow", partitions: 2)])
            await admin.close()
            #expect(client.cachedMetadata.topics["grow"]?.partitions.count == 1)
            // Partition 1 is not in the cache: the client asks again and finds it.
            #expect(try await client.listOffset(topic: "grow", partition: 1, .latest) == 0)
            #expect(client.cachedMetadata.topics["grow"]?.partitions.count == 2)
            await producer.close()
        }
    }

    @Test("A topic that appears while the client waits is found by refreshing metadata")
    func refreshUntilTopicExists() async throws {
        try await ClientTestBroker.with { broker, client in
            await #expect(throws: KafkaClientError.self) { _ = try await client.listOffset(topic: "later", partition: 0, .latest) }
            let admin = try await KafkaClient.connect(bootstrap: broker.bootstrap)
            async let created: Void = admin.createTopics([NewTopic(name: "later", partitions: 1)])
            // Patient enough for a slow creation on a loaded machine (30 s of 100 ms retries).
            let patient = try await KafkaClient.connect(bootstrap: broker.bootstrap, configuration: ClientConfiguration(retries: 300))
            let producer = patient.makeProducer()
            // Retries UNKNOWN_TOPIC_OR_PARTITION (refreshing) until the topic is there, however the two race.
            let metadata = try await producer.sendAndWait(topic: "later", value: ByteBuffer(string: "x"))
            #expect(metadata.offset == 0)
            try await created
            await admin.close()
            await producer.close()
            await patient.close()
        }
    }

    @Test("Metadata with auto-creation on creates the topic the producer asks for")
    func autoCreate() async throws {
        try await ClientTestBroker.with(autoCreateTopics: true) { broker, client in
            let metadata = try await client.refreshMetadata(topics: ["auto"], allowAutoTopicCreation: true)
            #expect(metadata.topics["auto"]?.partitions.count == 1)
        }
    }

    @Test("ApiVersions negotiation picks the highest common version of each API")
    func negotiation() async throws {
        try await ClientTestBroker.with { broker, client in
            let metadata = try await client.refreshMetadata(topics: [])
            #expect(metadata.brokers[0]?.port == broker.port)
            let table = ApiVersionTable(broker: [
                Self.entry(.produce, 0...9), Self.entry(.fetch, 2...15), Self.entry(.metadata, 0...4), Self.entry(.listOffsets, 8...9),
            ])
            #expect(try table.version(.produce) == 9)
            #expect(try table.version(.fetch) == 12)
            #expect(try table.version(.metadata) == 4)
            #expect(throws: KafkaClientError.unsupportedApi(.listOffsets)) { try table.version(.listOffsets) }
            #expect(throws: KafkaClientError.unsupportedApi(.createTopics)) { try table.version(.createTopics) }
        }
    }

    static func entry(_ key: ApiKey, _ range: ClosedRange<Int16>) -> ApiVersionsResponse.ApiVersion {
        var entry = ApiVersionsResponse.ApiVersion()
        entry.apiKey = key.rawValue
        entry.minVersion = range.lowerBound
        entry.maxVersion = range.upperBound
        return entry
    }
}
