import Foundation
import Testing

/// Config changes through real clients' admin APIs (Tests/Interop/admin_configs.py): the oldest and
/// newest confluent-kafka of the matrix and the kafka-python versions that have `alter_configs`.
@Suite("Config changes through real clients")
struct AdminConfigsInteropTests {
    static let clients = ClientMatrixTests.clients.filter {
        ["confluent-kafka-2.0.2", "confluent-kafka-2.3.0", "confluent-kafka-2.16.2", "kafka-python-2.2.21", "kafka-python-3.0.12"].contains($0.name)
            || $0.python.isEmpty
    }

    @Test("Incremental and whole-set changes, described with their source; bad ones refused with INVALID_CONFIG", arguments: clients)
    func client(_ client: ClientMatrixTests.Client) async throws {
        try #require(!client.python.isEmpty, "SAMSA_CLIENT_MATRIX is not set: run the tests with scripts/test.sh, which makes the client venvs")
        try await TestBroker.with { broker in
            let data = try await ClientProcess.run([
                "timeout", "-k", "5", "120", client.python, PythonClient.interop.appendingPathComponent("admin_configs.py").path,
                "127.0.0.1:\(broker.port)", "configured",
            ])
            let outcome = try JSONDecoder().decode(ClientMatrixTests.Outcome.self, from: data)
            #expect(Set(outcome.steps.keys) == ["create_topic", "incremental_alter", "alter_whole_set", "refused", "broker_default"], "\(outcome.steps)")
            for (step, result) in outcome.steps.sorted(by: { $0.key < $1.key }) {
                #expect(!result.hasPrefix("error"), "\(outcome.client) \(outcome.version): \(step): \(result)")
            }
            if client.name.hasPrefix("confluent-kafka-2.1") || client.name == "confluent-kafka-2.3.0" {
                #expect(outcome.steps["incremental_alter"] == "ok" && outcome.steps["broker_default"] == "ok")
            }
        }
    }
}
