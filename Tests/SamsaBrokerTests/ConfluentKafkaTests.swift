import Foundation
import Testing

/// confluent-kafka 2.16.1 (librdkafka 2.16.0) against the broker: admin create, produce with acks=all
/// (idempotent and not, three codecs), a group consumer that reads everything and commits.
@Suite("Broker with confluent-kafka")
struct ConfluentKafkaTests {
    struct Outcome: Decodable {
        var delivered: [Int64]
        var values: [String]
        var committed: Int64
    }

    @Test("Produce, consume in a group, commit", arguments: [("none", false), ("lz4", true), ("zstd", true), ("zstd", false)])
    func produceConsumeCommit(compression: String, idempotent: Bool) async throws {
        try await TestBroker.with(flushPolicy: .everyAppend) { broker in
            let count = 300
            let topic = "ck-\(compression)-\(idempotent)"
            let data = try await PythonClient.run(
                "confluent_kafka_client.py", ["127.0.0.1:\(broker.port)", topic, "\(count)", compression, "\(idempotent)"])
            let outcome = try JSONDecoder().decode(Outcome.self, from: data)
            #expect(outcome.delivered == (0..<Int64(count)).map { $0 })
            #expect(outcome.values == (0..<count).map { "value-\($0)" })
            #expect(outcome.committed == Int64(count))
        }
    }
}
