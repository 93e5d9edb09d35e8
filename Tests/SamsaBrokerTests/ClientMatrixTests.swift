import Foundation
import Testing

/// Every Kafka client version people have installed (scripts/client-matrix.sh makes a venv for each and
/// sets `SAMSA_CLIENT_MATRIX`) through the calls real tools make, against a broker of its own: list all
/// topics, describe the cluster and a topic, create a topic, produce idempotently with acks=all, consume
/// in a group and commit, describe the group, describe configs (Tests/Interop/client_matrix.py).
@Suite("Kafka client version matrix")
struct ClientMatrixTests {
    struct Client: CustomTestStringConvertible, Sendable {
        var name: String
        var python: String
        var testDescription: String { name }
    }

    /// The venvs scripts/test.sh made; without them, one entry that fails and says why.
    static let clients: [Client] = {
        guard let matrix = ProcessInfo.processInfo.environment["SAMSA_CLIENT_MATRIX"], !matrix.isEmpty else {
            return [Client(name: "SAMSA_CLIENT_MATRIX unset", python: "")]
        }
        return matrix.split(separator: " ").compactMap { entry in
            let parts = entry.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? Client(name: String(parts[0]), python: String(parts[1])) : nil
        }
    }()

    struct Outcome: Decodable {
        var client: String
        var version: String
        var steps: [String: String]
    }

    static let steps = [
        "list_topics", "describe_cluster", "create_topic", "describe_topics", "idempotent_produce", "group_consume_commit",
        "describe_group", "describe_configs", "list_topics_again",
    ]

    @Test("A client version passes every step", arguments: clients)
    func clientVersion(_ client: Client) async throws {
        try #require(!client.python.isEmpty, "SAMSA_CLIENT_MATRIX is not set: run the tests with scripts/test.sh, which makes the client venvs")
        try await TestBroker.with(flushPolicy: .everyAppend) { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("existing", partitions: 1, on: connection).errorCode == 0)
            try await connection.close()
            // The script bounds each step; `timeout` bounds the whole run should a client hang regardless.
            let data = try await ClientProcess.run([
                "timeout", "-k", "5", "240", client.python, PythonClient.interop.appendingPathComponent("client_matrix.py").path,
                "127.0.0.1:\(broker.port)", "matrix",
            ])
            let outcome = try JSONDecoder().decode(Outcome.self, from: data)
            #expect(Set(outcome.steps.keys) == Set(Self.steps), "\(outcome.steps)")
            for (step, result) in outcome.steps.sorted(by: { $0.key < $1.key }) {
                #expect(!result.hasPrefix("error"), "\(outcome.client) \(outcome.version): \(step): \(result)")
            }
        }
    }
}
