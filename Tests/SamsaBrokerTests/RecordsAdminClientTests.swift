import Foundation
import Testing
@testable import SamsaBroker

/// DeleteRecords through real clients' admin APIs (Tests/Interop/records_admin.py): the oldest
/// confluent-kafka of the matrix that has `delete_records` (2.4 added it; 2.6.1 here) and the newest,
/// kafka-python 2.2 and 3.0 (3.0 also `describe_log_dirs`). Each checks the effect: the low watermark
/// answered, a new group consumer at earliest starts at the new log start, a deletion past the high
/// watermark refused with OFFSET_OUT_OF_RANGE.
@Suite("DeleteRecords through real clients")
struct RecordsAdminClientTests {
    static let clients = ["confluent-kafka-2.6.1", "confluent-kafka-2.16.2", "kafka-python-2.2.21", "kafka-python-3.0.12"]

    struct Outcome: Decodable {
        var client: String
        var version: String
        var low_watermark: Int64
        var first_offset: Int64?
        var values: [String]
        var refused: String
        var partition_size: Int64?
    }

    /// The matrix venv's python for `name`, from `SAMSA_CLIENT_MATRIX` (scripts/client-matrix.sh).
    static func python(_ name: String) throws -> String {
        let matrix = ProcessInfo.processInfo.environment["SAMSA_CLIENT_MATRIX"] ?? ""
        let entry = matrix.split(separator: " ").first { $0.hasPrefix("\(name)=") }
        return try #require(entry.map { String($0.dropFirst(name.count + 1)) }, "SAMSA_CLIENT_MATRIX has no \(name): run with scripts/test.sh")
    }

    static func run(_ client: String, port: Int, topic: String, replicas: Int = 1) async throws -> Outcome {
        let data = try await ClientProcess.run([
            "timeout", "-k", "5", "180", try python(client), PythonClient.interop.appendingPathComponent("records_admin.py").path,
            "127.0.0.1:\(port)", topic, "\(replicas)",
        ])
        let outcome = try JSONDecoder().decode(Outcome.self, from: data)
        #expect(outcome.low_watermark == 40, "\(client)")
        #expect(outcome.first_offset == 40, "\(client): a consumer at earliest starts at the new log start")
        #expect(outcome.values == (40..<100).map { "value-\($0)" }, "\(client)")
        #expect(["OFFSET_OUT_OF_RANGE", "OffsetOutOfRangeError"].contains(outcome.refused), "\(client): \(outcome.refused)")
        return outcome
    }

    @Test("a client deletes records on a single broker", arguments: clients)
    func singleBroker(_ client: String) async throws {
        try await TestBroker.with(flushPolicy: .everyAppend) { broker in
            let outcome = try await Self.run(client, port: broker.port, topic: "trimmed")
            #expect(broker.broker.dispatcher.topics.log("trimmed", 0)?.logStartOffset == 40)
            if client.hasPrefix("kafka-python-3") {
                #expect(outcome.partition_size == Int64(try #require(broker.broker.dispatcher.topics.log("trimmed", 0)).sizeInBytes))
            }
        }
    }

    @Test("confluent-kafka 2.16.2 deletes records in a 3-broker cluster: every replica's log start moves")
    func cluster() async throws {
        let cluster = try await TestCluster.start()
        do {
            _ = try await Self.run("confluent-kafka-2.16.2", port: try requireBroker(cluster.broker(1)).localAddress.port!, topic: "trimmed", replicas: 3)
            let state = try await cluster.settled("trimmed")
            #expect(state.isr.count == 3)
            for broker in state.isr { #expect(cluster.log(broker, "trimmed")?.logStartOffset == 40, "broker \(broker)") }
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }
}
