import Foundation
import Testing

/// Real clients' group administration (Tests/Interop/group_admin.py) against a broker: librdkafka's
/// AdminClient (the oldest and newest confluent-kafka of the matrix; both have every group call) and
/// kafka-python's KafkaAdminClient, each with its effect read back.
@Suite("Group administration with real clients")
struct GroupAdminClientTests {
    struct Outcome: Decodable {
        var client: String
        var version: String
        var offsets: [String: Int64]
        var alter: [[AnyCodable]]?
        var list: [[String]]?
        var describe: Described?
        var deleteOffsets: [String: String]?
        var offsetsAfterDeleteOffsets: [String: Int64]?
        var delete: [String: String]
        var offsetsAfter: [String: Int64]
        var listAfter: [String]?
    }

    struct Described: Decodable {
        var state: String
        var members: Int
        var partitions: [Int]
    }

    /// A JSON scalar (the alter step pairs a partition with its error name).
    struct AnyCodable: Decodable, Equatable {
        var text: String
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self.text = text
            } else {
                text = "\(try container.decode(Int.self))"
            }
        }
    }

    static let clients = ClientMatrixTests.clients.filter {
        ["confluent-kafka-2.0.2", "confluent-kafka-2.16.2", "kafka-python-2.0.2", "kafka-python-2.2.21", "kafka-python-3.0.12", "SAMSA_CLIENT_MATRIX unset"]
            .contains($0.name)
    }

    @Test("List, describe, read, alter, delete offsets and delete groups: each call's effect", arguments: clients)
    func groupAdministration(_ client: ClientMatrixTests.Client) async throws {
        try #require(!client.python.isEmpty, "SAMSA_CLIENT_MATRIX is not set: run the tests with scripts/test.sh, which makes the client venvs")
        try await TestBroker.with(flushPolicy: .everyAppend) { broker in
            let data = try await ClientProcess.run([
                "timeout", "-k", "5", "180", client.python, PythonClient.interop.appendingPathComponent("group_admin.py").path, "127.0.0.1:\(broker.port)",
            ])
            let outcome = try JSONDecoder().decode(Outcome.self, from: data)
            #expect(outcome.offsets == ["0": 3, "1": 2])
            #expect(outcome.delete == ["idle-group": "NONE", "live-group": "NON_EMPTY_GROUP", "no-such-group": "GROUP_ID_NOT_FOUND"])
            #expect(outcome.offsetsAfter == [:])
            if outcome.client == "confluent-kafka" {
                #expect(outcome.alter?.map { $0.map(\.text) } == [["0", "NONE"], ["1", "NONE"]])
                #expect(outcome.list == [["idle-group", "EMPTY"], ["live-group", "STABLE"]])
                #expect(outcome.describe?.state == "STABLE" && outcome.describe?.members == 1 && outcome.describe?.partitions == [0, 1])
                #expect(outcome.listAfter == ["live-group"])
            }
            if outcome.version.hasPrefix("3.") {
                #expect(outcome.deleteOffsets == ["1": "NONE"])
                #expect(outcome.offsetsAfterDeleteOffsets == ["0": 3])
            }
        }
    }
}
