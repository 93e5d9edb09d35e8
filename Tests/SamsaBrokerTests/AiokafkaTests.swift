import Foundation
import Testing

/// aiokafka 0.14.0 against the broker: it speaks only non-flexible versions (ApiVersions v0, Metadata 5,
/// Produce 7, Fetch 11, JoinGroup 5, SyncGroup 3, OffsetCommit/OffsetFetch 3).
@Suite("Broker with aiokafka")
struct AiokafkaTests {
    struct Outcome: Decodable {
        var offsets: [Int64]
        var values: [String]
        var committed: Int64
    }

    @Test("Produce (acks=1), consume in a group, commit", arguments: ["none", "lz4", "zstd"])
    func produceConsumeCommit(compression: String) async throws {
        try await TestBroker.with(flushPolicy: .everyAppend) { broker in
            let count = 50
            let data = try await PythonClient.run("aiokafka_client.py", ["127.0.0.1:\(broker.port)", "aio-\(compression)", "\(count)", compression])
            let outcome = try JSONDecoder().decode(Outcome.self, from: data)
            #expect(outcome.offsets == (0..<Int64(count)).map { $0 })
            #expect(outcome.values == (0..<count).map { "value-\($0)" })
            #expect(outcome.committed == Int64(count))
        }
    }
}
