import Foundation
import NIOCore
import SamsaBroker
import SamsaClient
import SamsaRecords
import SamsaStorage
import SamsaTestSupport

/// A broker on 127.0.0.1 with an ephemeral port and a fresh data directory, stopped and removed when
/// the body ends, with a client connected to it.
struct ClientTestBroker {
    let broker: Broker
    let directory: String
    var port: Int { broker.localAddress.port! }
    var bootstrap: String { "127.0.0.1:\(port)" }

    static func with(
        autoCreateTopics: Bool = false, flushPolicy: FlushPolicy = .never, _ body: (ClientTestBroker, KafkaClient) async throws -> Void
    ) async throws {
        let directory = temporaryPath("samsa-client")
        let configuration = BrokerConfiguration(
            dataDirectory: directory, port: 0, autoCreateTopics: autoCreateTopics, logConfiguration: LogConfiguration(flushPolicy: flushPolicy),
            eventLoopThreads: 1, ioThreads: 2)
        let broker = ClientTestBroker(broker: try await Broker.start(configuration), directory: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let client: KafkaClient
        do {
            client = try await KafkaClient.connect(bootstrap: broker.bootstrap)
        } catch {
            try await broker.broker.stop()
            throw error
        }
        do {
            try await body(broker, client)
        } catch {
            await client.close()
            try await broker.broker.stop()
            throw error
        }
        await client.close()
        try await broker.broker.stop()
    }
}

/// Every record of a partition from `offset` up to `end`, fetched with the client.
func fetchAll(_ client: KafkaClient, topic: String, partition: Int32 = 0, from offset: Int64 = 0, until end: Int64) async throws -> [Record] {
    var records: [Record] = []
    var position = offset
    while position < end {
        let fetched = try await client.fetch(topic: topic, partition: partition, offset: position, maxWaitMilliseconds: 1000)
        let decoded = try fetched.records()
        records += decoded
        position = fetched.nextOffset
        if decoded.isEmpty && fetched.highWatermark <= position { break }
    }
    return records
}
