import Foundation
import Glibc
import SamsaProtocol
import SamsaTestSupport
import Testing

/// The check: a partition reassignment under a real client's acks=all idempotent producer
/// (confluent-kafka) between `samsa broker` processes on a real ZooKeeper, losing and duplicating
/// nothing.
@Suite("Partition reassignment between samsa broker processes")
struct ReassignmentProcessTests {
    static let topic = "events"
    static let partitions: Int32 = 2

    /// Each partition's metadata and the controller, as `port`'s broker answers.
    static func metadata(port: Int) async throws -> (partitions: [Int32: MetadataResponse.MetadataResponsePartition], controller: Int32) {
        let connection = try await TestConnection(port: port)
        defer { Task { try? await connection.close() } }
        var request = MetadataRequest()
        var wanted = MetadataRequest.MetadataRequestTopic()
        wanted.name = topic
        request.topics = [wanted]
        let response = try await connection.request(request, version: 12, expecting: MetadataResponse.self)
        let partitions = response.topics.first?.partitions ?? []
        return (Dictionary(uniqueKeysWithValues: partitions.map { ($0.partitionIndex, $0) }), response.controllerId)
    }

    @Test("confluent-kafka (acks=all, idempotent) produces while partition 0 moves off its leader onto a new fourth broker: each acknowledged record consumed once at its offset; the old replica's directory is gone")
    func reassignUnderProducer() async throws {
        let zooKeeper = try await blocking { try ZooKeeperEnsemble(count: 1) }
        let root = temporaryPath("samsa-reassign")
        var brokers: [Int32: BrokerProcessTests.BrokerProcess] = [:]
        var producer: BackgroundClient?
        defer {
            producer?.kill()
            for broker in brokers.values { broker.signal(SIGKILL) }
            zooKeeper.stopAll()
            try? FileManager.default.removeItem(atPath: root)
        }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        func start(_ id: Int32) async throws {
            brokers[id] = try await blocking {
                try BrokerProcessTests.BrokerProcess(
                    directory: "\(root)/broker-\(id)",
                    extra: ["--broker-id", "\(id)", "--coordination", "zookeeper://\(zooKeeper.connectString[0])/samsa/test", "--session-timeout-ms", "3000"],
                    log: "\(root)/broker-\(id).log")
            }
        }
        for id in Int32(1)...3 { try await start(id) }
        let port = brokers[1]!.port
        let admin = try await TestConnection(port: port)
        #expect(try await admin.createTopic(Self.topic, partitions: Self.partitions, replicationFactor: 3, configs: ["min.insync.replicas": "2"]).errorCode == 0)
        try await admin.close()
        let before = try await eventually("every partition has a leader and a full ISR") { () -> MetadataResponse.MetadataResponsePartition? in
            let partitions = try await Self.metadata(port: port).partitions
            guard partitions.count == Int(Self.partitions), partitions.values.allSatisfy({ $0.leaderId >= 0 && $0.isrNodes.count == 3 }) else { return nil }
            return partitions[0]
        }
        try await start(4)

        let bootstrap = brokers.keys.sorted().map { "127.0.0.1:\(brokers[$0]!.port)" }.joined(separator: ",")
        producer = try BackgroundClient(
            [PythonClient.python, PythonClient.interop.appendingPathComponent("confluent_cluster_producer.py").path, bootstrap, Self.topic, "\(Self.partitions)"],
            errors: "\(root)/producer.log")
        try await Task.sleep(for: .seconds(2))  // the producer is under way (its records are counted at the end, not here)

        // Partition 0 leaves its leader for broker 4: [a, b, c] -> [b, c, 4].
        let leaving = before.leaderId
        let target = before.replicaNodes.filter { $0 != leaving } + [4]
        let controller = try await eventually("a controller") { () -> Int32? in
            let id = try await Self.metadata(port: port).controller
            return id >= 0 ? id : nil
        }
        let connection = try await TestConnection(port: brokers[controller]!.port)
        let accepted = try await ReassignmentTests.reassign([(Self.topic, 0, target)], on: connection)
        #expect(accepted.error == 0 && accepted.results == ["\(Self.topic)-0": 0])
        try await eventually("the reassignment completes", timeout: .seconds(60)) { try await ReassignmentTests.list(nil, on: connection).ongoing.isEmpty }
        try await connection.close()
        let after = try await eventually("partition 0 is led in its target with the target as ISR") { () -> MetadataResponse.MetadataResponsePartition? in
            guard let now = try await Self.metadata(port: port).partitions[0], now.replicaNodes == target, Set(now.isrNodes) == Set(target) else { return nil }
            return now
        }
        #expect(after.leaderId != leaving && after.leaderEpoch > before.leaderEpoch)
        try await eventually("broker \(leaving)'s directory of partition 0 is gone") {
            !FileManager.default.fileExists(atPath: "\(root)/broker-\(leaving)/\(Self.topic)-0")
        }
        #expect(FileManager.default.fileExists(atPath: "\(root)/broker-4/\(Self.topic)-0"))
        try await Task.sleep(for: .seconds(1))  // some more records after the move

        let outcome = try JSONDecoder().decode(EnsembleFailoverTests.Outcome.self, from: try await producer!.finish())
        producer = nil
        #expect(outcome.errors.isEmpty && outcome.undelivered == 0, "\(outcome.errors.prefix(10)), \(outcome.undelivered) undelivered")
        #expect(outcome.delivered.count > 100, "only \(outcome.delivered.count) records acknowledged")
        #expect(Set(outcome.delivered.map(\.value)).count == outcome.delivered.count, "a value delivered twice")
        var consumedAt: [[Int64]: String] = [:]
        for record in outcome.consumed { consumedAt[[Int64(record.partition), record.offset ?? -1]] = record.value }
        #expect(Set(outcome.consumed.map(\.value)).count == outcome.consumed.count, "a record in the logs twice")
        let missing = outcome.delivered.filter { consumedAt[[Int64($0.partition), $0.offset ?? -1]] != $0.value }
        #expect(missing.isEmpty, "\(missing.count) acknowledged records not consumed at their offset: \(missing.prefix(5).map(\.value))")
        #expect(outcome.consumed.count == outcome.delivered.count, "consumed \(outcome.consumed.count), acknowledged \(outcome.delivered.count)")
        FileHandle.standardError.write(Data("ReassignmentProcessTests: \(outcome.delivered.count) records acknowledged across the move\n".utf8))

        for id in brokers.keys.sorted() {
            let broker = brokers.removeValue(forKey: id)!
            try await blocking { broker.signal(SIGTERM) }
            #expect(broker.process.terminationReason == .exit && broker.process.terminationStatus == 0, "broker \(id) did not stop cleanly")
        }
    }
}
