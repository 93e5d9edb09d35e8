import NIOCore
import SamsaProtocol
import SamsaStorage
import Testing
@testable import SamsaBroker

/// One coordinator per group across a cluster (in-process brokers on embedded coordination): every
/// broker names the same coordinator (the leader of the group's `__consumer_offsets` partition),
/// the others answer NOT_COORDINATOR, and committed offsets survive the coordinator's crash.
@Suite("Group coordinator across a cluster")
struct GroupCoordinatorClusterTests {
    static let partitions: Int32 = 5

    /// Runs `body` on three brokers (5 `__consumer_offsets` partitions) and stops them however it ends.
    static func withCluster(_ body: (TestCluster) async throws -> Void) async throws {
        let cluster = try TestCluster(lagMs: 30_000)
        do {
            for id in Int32(1)...3 {
                try await cluster.start(BrokerID(id)) { $0.offsetsTopic.partitions = partitions }
            }
            try await body(cluster)
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    /// The coordinator `connection`'s broker names for `group` (v3 single key, v4 batched), or its error.
    static func coordinator(of group: String, on connection: TestConnection, version: Int16 = 3) async throws -> (node: Int32, error: Int16) {
        var request = FindCoordinatorRequest()
        if version >= 4 { request.coordinatorKeys = [group] } else { request.key = group }
        let response = try await connection.request(request, version: version, expecting: FindCoordinatorResponse.self)
        if version >= 4 { return (response.coordinators.first?.nodeId ?? -1, response.coordinators.first?.errorCode ?? -1) }
        return (response.nodeId, response.errorCode)
    }

    /// Asks every running broker until they all name one live coordinator for `group` (bounded).
    static func agreedCoordinator(of group: String, in cluster: TestCluster, timeout: Duration = .seconds(30)) async throws -> BrokerID {
        let deadline = ContinuousClock.now + timeout
        while true {
            var named = Set<Int32>()
            for id in cluster.running {
                let connection = try await cluster.connection(id)
                defer { Task { try? await connection.close() } }
                for version in Int16(3)...4 {
                    let found = try await coordinator(of: group, on: connection, version: version)
                    named.insert(found.error == 0 ? found.node : -1)
                }
            }
            if named.count == 1, let node = named.first, cluster.running.contains(BrokerID(node)) {
                // Loaded there: a fetch answers without NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS.
                let connection = try await cluster.connection(BrokerID(node))
                let code = try await fetchError(group, on: connection)
                try await connection.close()
                if code == 0 { return BrokerID(node) }
            }
            guard ContinuousClock.now < deadline else { throw CoordinatorNotAgreed(named: named) }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    struct CoordinatorNotAgreed: Error {
        var named: Set<Int32>
    }

    static func fetchError(_ group: String, on connection: TestConnection) async throws -> Int16 {
        var request = OffsetFetchRequest()
        request.groupId = group
        request.topics = []
        return try await connection.request(request, version: 7, expecting: OffsetFetchResponse.self).errorCode
    }

    @Test("Every broker names the same coordinator; elsewhere group and offset requests get NOT_COORDINATOR; commits survive the coordinator's crash")
    func oneCoordinatorPerGroup() async throws {
        try await Self.withCluster { cluster in
            let admin = try await cluster.connection(1)
            #expect(try await admin.createTopic("t", partitions: 2, replicationFactor: 3).errorCode == 0)
            let groups = (0..<8).map { "group-\($0)" }
            var coordinators: [String: BrokerID] = [:]
            for group in groups { coordinators[group] = try await Self.agreedCoordinator(of: group, in: cluster) }
            // The coordinator is the leader of the group's partition, as coordination records it.
            for group in groups {
                let state = try await cluster.state(GroupPlacement.topic, GroupPlacement.partition(of: group, partitions: Self.partitions))
                #expect(state.leader == coordinators[group])
            }
            let group = groups[0]
            let coordinator = coordinators[group]!
            let owner = try await cluster.connection(coordinator)
            #expect(try await GroupDeletionTests.commit(group, [0: 5, 1: 6], on: owner) == [0, 0])
            for other in cluster.running where other != coordinator {
                let elsewhere = try await cluster.connection(other)
                #expect(try await GroupDeletionTests.commit(group, [0: 99], on: elsewhere) == [ErrorCode.notCoordinator.rawValue])
                #expect(try await Self.fetchError(group, on: elsewhere) == ErrorCode.notCoordinator.rawValue)
                let joined = try await GroupDeletionTests.joinAlone(group, metadata: GroupDeletionTests.subscription(["t"]), on: elsewhere)
                #expect(joined.errorCode == ErrorCode.notCoordinator.rawValue)
                try await elsewhere.close()
            }
            try await owner.close()
            #expect(try await GroupDeletionTests.committed(group, [0, 1], on: try await cluster.connection(coordinator)) == [5, 6])

            // The coordinator crashes: another broker leads the partition, replays it, and has the commits.
            try await cluster.kill(coordinator)
            let successor = try await Self.agreedCoordinator(of: group, in: cluster)
            #expect(successor != coordinator)
            let next = try await cluster.connection(successor)
            #expect(try await GroupDeletionTests.committed(group, [0, 1], on: next) == [5, 6])
            #expect(try await GroupDeletionTests.commit(group, [0: 7], on: next) == [0])
            try await next.close()

            // Back again: the restarted broker follows the partition and whoever leads it has both commits.
            try await cluster.start(coordinator) { $0.offsetsTopic.partitions = Self.partitions }
            let last = try await Self.agreedCoordinator(of: group, in: cluster)
            let connection = try await cluster.connection(last)
            #expect(try await GroupDeletionTests.committed(group, [0, 1], on: connection) == [7, 6])
            try await connection.close()
            try await admin.close()
        }
    }
}

extension GroupCoordinatorClusterTests {
    @Test("A commit its followers cannot copy times out (COORDINATOR_NOT_AVAILABLE) and the partition reloads; once they fetch again it is there. A coordinator no follower fetches from stops answering")
    func commitOutlivesItsTimeout() async throws {
        try await Self.withCluster { cluster in
            let admin = try await cluster.connection(1)
            #expect(try await admin.createTopic("t", partitions: 2, replicationFactor: 3).errorCode == 0)
            let group = "cut-off"
            let coordinator = try await Self.agreedCoordinator(of: group, in: cluster)
            let connection = try await cluster.connection(coordinator)
            #expect(try await GroupDeletionTests.commit(group, [0: 1], on: connection) == [0])
            // No follower can fetch from the coordinator: the commit is appended there, never replicated.
            let followers = cluster.running.filter { $0 != coordinator }
            for follower in followers { cluster.links.cut(follower, coordinator) }
            #expect(try await GroupDeletionTests.commit(group, [0: 2], on: connection) == [ErrorCode.coordinatorNotAvailable.rawValue])
            // Silent followers: another leader may exist; this coordinator answers NOT_COORDINATOR.
            #expect(try await Self.fetchError(group, on: connection) == ErrorCode.notCoordinator.rawValue)
            cluster.links.heal(to: coordinator)
            // The reloaded partition has the commit whose answer timed out: it was in the log, and is now replicated.
            let again = try await Self.agreedCoordinator(of: group, in: cluster)
            #expect(again == coordinator)
            #expect(try await GroupDeletionTests.committed(group, [0], on: connection) == [2])
            #expect(try await GroupDeletionTests.commit(group, [0: 3], on: connection) == [0])
            #expect(try await GroupDeletionTests.committed(group, [0], on: connection) == [3])
            try await connection.close()
            try await admin.close()
        }
    }
}
