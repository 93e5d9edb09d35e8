import Foundation
import SamsaTestSupport
import Testing
@testable import SamsaBroker

/// Real clients' AdminClient (Tests/Interop/topic_admin.py) adding partitions and deleting topics,
/// against a single broker and a 3-broker cluster, with the effect checked on the brokers.
@Suite("Topic administration with real clients")
struct TopicAdminClientTests {
    /// The oldest and newest confluent-kafka, and the kafka-python versions, of the matrix.
    static let clients: [ClientMatrixTests.Client] = {
        let wanted: Set = ["confluent-kafka-2.0.2", "confluent-kafka-2.16.2", "kafka-python-2.2.21", "kafka-python-3.0.12"]
        let found = ClientMatrixTests.clients.filter { wanted.contains($0.name) }
        return found.isEmpty ? ClientMatrixTests.clients : found
    }()

    static func run(_ client: ClientMatrixTests.Client, port: Int, topic: String, replicationFactor: Int) async throws {
        try #require(!client.python.isEmpty, "SAMSA_CLIENT_MATRIX is not set: run the tests with scripts/test.sh, which makes the client venvs")
        let data = try await ClientProcess.run([
            "timeout", "-k", "5", "180", client.python, PythonClient.interop.appendingPathComponent("topic_admin.py").path, "127.0.0.1:\(port)", topic,
            "\(replicationFactor)",
        ])
        let outcome = try JSONDecoder().decode(ClientMatrixTests.Outcome.self, from: data)
        #expect(outcome.steps.count == 8, "\(outcome.steps)")
        for (step, result) in outcome.steps.sorted(by: { $0.key < $1.key }) {
            #expect(result == "ok", "\(outcome.client) \(outcome.version): \(step): \(result)")
        }
    }

    @Test("create_partitions and delete_topics against a single broker", arguments: clients)
    func singleBroker(_ client: ClientMatrixTests.Client) async throws {
        try await TestBroker.with { broker in
            try await Self.run(client, port: broker.port, topic: "admin", replicationFactor: 1)
            #expect(broker.broker.dispatcher.topics.topic("admin") == nil)
            #expect(!FileManager.default.fileExists(atPath: "\(broker.directory)/admin-0"))
        }
    }

    @Test("create_partitions and delete_topics against a 3-broker cluster: every replica's logs are gone", arguments: clients)
    func cluster(_ client: ClientMatrixTests.Client) async throws {
        let cluster = try await TestCluster.start()
        do {
            let port = try requireBroker(cluster.broker(1)).localAddress.port!
            try await Self.run(client, port: port, topic: "admin", replicationFactor: 3)
            try await eventually("every broker deleted the topic's logs") {
                cluster.running.allSatisfy { id in
                    cluster.broker(id)?.dispatcher.topics.topic("admin") == nil
                        && (0..<4).allSatisfy { !ClusterTopicAdminTests.partitionDirectoryExists(cluster, id, "admin", $0) }
                }
            }
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }
}
