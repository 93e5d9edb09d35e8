import NIOCore
@testable import SamsaClient
import Synchronization
import Testing
import SamsaTestSupport

/// `pipelineBytes`: a further request waits for enough ready bytes, but never forever.
@Suite("Client request pipelining", .offCooperativePool)
struct ClientPipeliningTests {
    @Test(
        "With a threshold no backlog reaches, every record still goes out (one request at a time), in order", .timeLimit(.minutes(1)),
        arguments: [0, 4096, 1 << 30])
    func thresholdNeverStalls(pipelineBytes: Int) async throws {
        try await ClientTestBroker.with(flushPolicy: .everyAppend) { broker, client in
            try await client.createTopics([NewTopic(name: "piped", partitions: 2)])
            let configuration = KafkaProducerConfiguration(lingerMilliseconds: 0, batchBytes: 512, pipelineBytes: pipelineBytes)
            let reports = Mutex<[DeliveryReport]>([])
            let producer = client.makeProducer(configuration) { report in reports.withLock { $0.append(report) } }
            for index in 0..<1000 {
                try await producer.send(topic: "piped", partition: Int32(index % 2), value: ByteBuffer(string: "v\(index)"), opaque: UInt64(index))
            }
            // The last records wait for an answer, not for a timer or a flush.
            while reports.withLock({ $0.reduce(0) { $0 + $1.recordCount } }) < 1000 { await Task.yield() }
            await producer.close()
            for partition: Int32 in 0..<2 {
                let records = try await fetchAll(client, topic: "piped", partition: partition, until: 500)
                #expect(records.map { String(buffer: $0.value!) } == stride(from: Int(partition), to: 1000, by: 2).map { "v\($0)" })
            }
        }
    }
}
