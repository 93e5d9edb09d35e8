import NIOCore
import SamsaClient
import Synchronization
import Testing
import SamsaTestSupport

/// The README's SamsaClient example, as written there (only the address differs), so it keeps compiling
/// and doing what the README says.
@Suite("Client README example", .offCooperativePool)
struct ClientReadmeExampleTests {
    @Test("The README example produces, lists offsets and fetches")
    func readmeExample() async throws {
        try await ClientTestBroker.with { broker, _ in
            let seen = Mutex<[String]>([])
            func print(_ items: Any...) { seen.withLock { $0.append(items.map { "\($0)" }.joined(separator: " ")) } }

            let client = try await KafkaClient.connect(bootstrap: broker.bootstrap)
            try await client.createTopics([NewTopic(name: "events", partitions: 3)])

            let producer = client.makeProducer(KafkaProducerConfiguration(acks: .all, compression: .lz4, lingerMilliseconds: 5))
            try await producer.send(topic: "events", key: ByteBuffer(string: "user-1"), value: ByteBuffer(string: "hello")) { result in
                // .success(KafkaRecordMetadata(topic:partition:offset:)) once acks are met, or .failure(KafkaClientError)
            }
            let metadata = try await producer.sendAndWait(topic: "events", partition: 0, value: ByteBuffer(string: "world"))
            await producer.close()  // flushes

            let end = try await client.listOffset(topic: "events", partition: 0, .latest)  // .earliest, .timestamp(ms)
            let fetched = try await client.fetch(topic: "events", partition: 0, offset: 0, maxWaitMilliseconds: 500, minBytes: 1)
            for record in try fetched.records() { print(record.offset, String(buffer: record.value!)) }
            await client.close()

            #expect(metadata.partition == 0)
            #expect(end == metadata.offset + 1)
            #expect(seen.withLock { $0 }.last == "\(metadata.offset) world")
        }
    }
}
