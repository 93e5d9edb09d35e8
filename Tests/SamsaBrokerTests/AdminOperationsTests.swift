import Foundation
import Testing
import SamsaTestSupport

/// librdkafka's AdminClient through every everyday operation bar security (Tests/Interop/admin_ops.py),
/// each with its effect checked, against a single broker and a 3-broker cluster: describe the cluster,
/// create, list and describe topics, add partitions, alter and describe configs, produce idempotently,
/// delete records, consume in a group and commit, list/describe groups, list and alter group offsets,
/// delete the group, elect preferred leaders, delete the topic and re-create it empty.
@Suite("librdkafka's AdminClient operations")
struct AdminOperationsTests {
    static let clients = ClientMatrixTests.clients.filter {
        ["confluent-kafka-2.0.2", "confluent-kafka-2.6.1", "confluent-kafka-2.16.2"].contains($0.name) || $0.python.isEmpty
    }

    static let steps: Set<String> = [
        "describe_cluster", "create_topic", "list_topics", "describe_topics", "create_partitions", "alter_and_describe_configs", "produce",
        "delete_records", "group_consume_commit", "list_and_describe_groups", "group_offsets", "delete_group", "elect_leaders", "delete_topic",
    ]

    static func run(_ client: ClientMatrixTests.Client, bootstrap: String, brokers: Int) async throws {
        try #require(!client.python.isEmpty, "SAMSA_CLIENT_MATRIX is not set: run the tests with scripts/test.sh, which makes the client venvs")
        let data = try await ClientProcess.run([
            "timeout", "-k", "5", "300", client.python, PythonClient.interop.appendingPathComponent("admin_ops.py").path, bootstrap, "\(brokers)",
        ])
        let outcome = try JSONDecoder().decode(ClientMatrixTests.Outcome.self, from: data)
        #expect(Set(outcome.steps.keys) == steps, "\(outcome.steps)")
        for (step, result) in outcome.steps.sorted(by: { $0.key < $1.key }) {
            #expect(!result.hasPrefix("error"), "\(outcome.client) \(outcome.version) on \(brokers) broker(s): \(step): \(result)")
        }
    }

    @Test("Against a single broker", arguments: clients)
    func singleBroker(_ client: ClientMatrixTests.Client) async throws {
        try await TestBroker.with(flushPolicy: .everyAppend) { broker in
            try await Self.run(client, bootstrap: "127.0.0.1:\(broker.port)", brokers: 1)
        }
    }

    @Test("Against a cluster of three brokers", .timeLimit(.minutes(3)), arguments: clients)
    func cluster(_ client: ClientMatrixTests.Client) async throws {
        let cluster = try await TestCluster.start(lagMs: 10_000)
        do {
            let bootstrap = try cluster.running.map { "127.0.0.1:\(try requireBroker(cluster.broker($0)).localAddress.port!)" }.joined(separator: ",")
            try await Self.run(client, bootstrap: bootstrap, brokers: 3)
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }
}
