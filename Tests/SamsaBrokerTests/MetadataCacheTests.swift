import SamsaCoordination
import SamsaProtocol
import SamsaTestSupport
import Synchronization
import Testing
@testable import SamsaBroker

/// A broker's coordination session that counts the reads of the cluster's metadata nodes
/// (`/brokers/...`, `/controller`): what a Metadata request costs in coordination.
final class CountingSession: CoordinationSession {
    private let inner: any CoordinationSession
    private let count = Atomic<Int>(0)

    init(_ inner: any CoordinationSession) { self.inner = inner }

    var reads: Int { count.load(ordering: .relaxed) }

    private func counted(_ path: String) {
        if path.hasPrefix("/brokers") || path.hasPrefix("/controller") { count.add(1, ordering: .relaxed) }
    }

    var sessionID: Int64 { inner.sessionID }
    var sessionTimeout: Duration { inner.sessionTimeout }
    var state: SessionState { inner.state }
    func states() -> AsyncStream<SessionState> { inner.states() }
    func create(_ path: String, data: [UInt8], mode: CreateMode) async throws -> String { try await inner.create(path, data: data, mode: mode) }
    func delete(_ path: String, version: Int32) async throws { try await inner.delete(path, version: version) }
    func exists(_ path: String, watch: Bool) async throws -> (stat: NodeStat?, watch: Watch?) {
        counted(path)
        return try await inner.exists(path, watch: watch)
    }
    func data(_ path: String, watch: Bool) async throws -> (data: [UInt8], stat: NodeStat, watch: Watch?) {
        counted(path)
        return try await inner.data(path, watch: watch)
    }
    func setData(_ path: String, data: [UInt8], version: Int32) async throws -> NodeStat { try await inner.setData(path, data: data, version: version) }
    func children(_ path: String, watch: Bool) async throws -> (names: [String], stat: NodeStat, watch: Watch?) {
        counted(path)
        return try await inner.children(path, watch: watch)
    }
    func multi(_ operations: [Operation]) async throws -> [OperationResult] { try await inner.multi(operations) }
    func close() async { await inner.close() }
}

/// The broker's metadata cache: Metadata follows leader changes, topics made or deleted through
/// another broker, brokers joining and leaving and reassignments, promptly and through watches; once
/// loaded, answering Metadata reads nothing from coordination.
@Suite("Metadata cache")
struct MetadataCacheTests {
    static func metadata(_ topics: [String]?, on connection: TestConnection) async throws -> MetadataResponse {
        var request = MetadataRequest()
        request.topics = topics?.map { name in
            var topic = MetadataRequest.MetadataRequestTopic()
            topic.name = name
            return topic
        }
        return try await connection.request(request, version: 12, expecting: MetadataResponse.self)
    }

    /// Runs `body` on the cluster, then stops it (also when `body` throws).
    static func using(_ cluster: TestCluster, _ body: (TestCluster) async throws -> Void) async throws {
        do {
            try await body(cluster)
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    static func cache(_ cluster: TestCluster, _ id: BrokerID) throws -> MetadataCache {
        try #require(cluster.broker(id)?.dispatcher.cluster?.metadataCache)
    }

    @Test("Once loaded, Metadata for every topic, DescribeCluster and FindCoordinator read nothing from coordination; without the cache one Metadata read 1 + brokers + 2 + topics × (1 + partitions) nodes")
    func noReadsOnceLoaded() async throws {
        let cluster = try TestCluster(lagMs: 30_000)
        let counting = Mutex<CountingSession?>(nil)
        let coordinator = cluster.coordinator
        try await cluster.start(1) { configuration in
            configuration.offsetsTopic.partitions = 3
            configuration.cluster?.connect = {
                let session = CountingSession(try coordinator.connect(sessionTimeout: .seconds(10)))
                counting.withLock { $0 = session }
                return session
            }
        }
        try await cluster.start(2) { $0.offsetsTopic.partitions = 3 }
        try await cluster.start(3) { $0.offsetsTopic.partitions = 3 }
        try await Self.using(cluster) { cluster in
            let created = 20
            let partitions: Int32 = 3
            let other = try await cluster.connection(2)
            for index in 0..<created {
                #expect(try await other.createTopic("t\(index)", partitions: partitions, replicationFactor: 2).errorCode == 0)
            }
            // The first FindCoordinator makes __consumer_offsets (3 partitions here): one topic more.
            var find = FindCoordinatorRequest()
            find.key = "group"
            _ = try await other.request(find, version: 3, expecting: FindCoordinatorResponse.self)
            let topics = created + 1
            for partition in 0..<partitions { _ = try await cluster.settled(GroupPlacement.topic, partition) }
            // Settled, so no watch fires (and reads) while the requests are counted.
            for index in 0..<created {
                for partition in 0..<partitions { _ = try await cluster.settled("t\(index)", partition) }
            }
            let cache = try Self.cache(cluster, 1)
            try await eventually("broker 1's cache holds every topic") { cache.loaded && cache.held.topics.count == topics }
            let session = try #require(counting.withLock { $0 })
            let connection = try await cluster.connection(1)

            // Without the cache (stopped: every read falls back to coordination, as before it existed).
            await cache.stop()
            var before = session.reads
            var answer = try await Self.metadata(nil, on: connection)
            #expect(answer.topics.count == topics && answer.topics.allSatisfy { $0.partitions.count == Int(partitions) && $0.errorCode == 0 })
            let uncached = session.reads - before
            #expect(uncached == 1 + 3 + 2 + topics * (1 + Int(partitions)))
            print("metadata cache: one Metadata request for \(topics) topics × \(partitions) partitions read \(uncached) nodes without the cache")

            cache.start()
            try await eventually("broker 1's cache is loaded again") { cache.loaded && cache.held.topics.count == topics }
            before = session.reads
            for _ in 0..<5 {
                answer = try await Self.metadata(nil, on: connection)
                #expect(answer.topics.count == topics && answer.brokers.count == 3 && answer.controllerId >= 1)
                #expect(answer.topics.allSatisfy { $0.partitions.count == Int(partitions) && $0.partitions.allSatisfy { $0.errorCode == 0 } })
                _ = try await connection.request(DescribeClusterRequest(), version: 0, expecting: DescribeClusterResponse.self)
                // The group's coordinator: the leader of its __consumer_offsets partition.
                let placed = answer.topics.first { $0.name == GroupPlacement.topic }?.partitions
                    .first { $0.partitionIndex == GroupPlacement.partition(of: "group", partitions: partitions) }
                #expect(try await connection.request(find, version: 3, expecting: FindCoordinatorResponse.self).nodeId == placed?.leaderId)
            }
            #expect(session.reads - before == 0)
            print("metadata cache: 5 Metadata requests for every topic read \(session.reads - before) nodes once loaded")
            try await connection.close()
            try await other.close()
        }
    }

    @Test("A topic made through another broker is answered at once; one deleted there goes from Metadata, the cache and its followers")
    func topicsMadeAndDeletedElsewhere() async throws {
        try await Self.using(try await TestCluster.start(brokers: 3)) { cluster in
            let asked = try await cluster.connection(1)
            let other = try await cluster.connection(2)
            let cache = try Self.cache(cluster, 1)
            try await eventually("broker 1's cache is loaded") { cache.loaded }
            #expect(try await other.createTopic("elsewhere", partitions: 4, replicationFactor: 2).errorCode == 0)
            // No waiting: a named topic the cache does not hold yet is read from coordination.
            let made = try await Self.metadata(["elsewhere"], on: asked)
            let topic = try #require(made.topics.first)
            #expect(topic.errorCode == 0 && topic.partitions.count == 4 && topic.topicId != .zero)
            #expect(topic.partitions.allSatisfy { $0.replicaNodes.count == 2 })
            try await eventually("listed among all topics") { try await Self.metadata(nil, on: asked).topics.contains { $0.name == "elsewhere" } }
            #expect(cache.held.topics.contains("elsewhere") && cache.held.followed.contains("elsewhere"))

            #expect(try await ClusterTopicAdminTests.deleteTopics(["elsewhere"], on: other) == [0])
            try await eventually("gone from broker 1's Metadata and cache") {
                let named = try await Self.metadata(["elsewhere"], on: asked).topics.first?.errorCode
                let all = try await Self.metadata(nil, on: asked).topics.map(\.name)
                let held = cache.held
                return named == ErrorCode.unknownTopicOrPartition.rawValue && !all.contains("elsewhere") && !held.topics.contains("elsewhere")
                    && !held.followed.contains("elsewhere")
            }
            try await asked.close()
            try await other.close()
        }
    }

    @Test("Metadata follows a killed leader's successor, a broker that stops and one that joins")
    func leaderAndBrokerChanges() async throws {
        try await Self.using(try await TestCluster.start(brokers: 3)) { cluster in
            #expect(try await cluster.connection(1).createTopic("moving", partitions: 1, replicationFactor: 3).errorCode == 0)
            let old = try await cluster.settled("moving")
            let survivor = try #require(cluster.running.first { $0 != old.leader })
            let asked = try await cluster.connection(survivor)
            let before = try #require(try await Self.metadata(["moving"], on: asked).topics.first?.partitions.first)
            #expect(before.leaderId == old.leader.rawValue)

            try await cluster.kill(old.leader)
            let new = try await cluster.settled("moving")
            try await eventually("the new leader and the stopped broker show") {
                let answer = try await Self.metadata(["moving"], on: asked)
                guard let partition = answer.topics.first?.partitions.first else { return false }
                return partition.leaderId == new.leader.rawValue && partition.leaderEpoch == new.leaderEpoch.rawValue
                    && !answer.brokers.map(\.nodeId).contains(old.leader.rawValue) && partition.offlineReplicas == [old.leader.rawValue]
            }
            #expect(new.leader != old.leader && new.leaderEpoch > old.leaderEpoch)

            try await cluster.start(4)
            try await eventually("the new broker shows") { try await Self.metadata([], on: asked).brokers.map(\.nodeId).contains(4) }
            try await asked.close()
        }
    }

    @Test("Metadata through a broker other than the controller follows a reassignment's replica changes")
    func reassignment() async throws {
        try await Self.using(try await TestCluster.start(brokers: 4)) { cluster in
            let controller = try await ElectLeadersTests.controller(cluster)
            let asked = try #require(cluster.running.first { $0 != controller })
            let connection = try await cluster.connection(asked)
            #expect(try await connection.createTopic("moved", partitions: 1, replicationFactor: 2).errorCode == 0)
            _ = try await cluster.settled("moved")
            let origin = try #require(try await Self.metadata(["moved"], on: connection).topics.first?.partitions.first?.replicaNodes)
            let target = [Int32(1), 2, 3, 4].filter { !origin.contains($0) }
            let control = try await cluster.connection(controller)
            let (error, results) = try await ReassignmentTests.reassign([("moved", 0, target)], on: control)
            #expect(error == 0 && results == ["moved-0": 0])
            try await eventually("the target replicas alone, led by one of them, once the reassignment completes") {
                guard let partition = try await Self.metadata(["moved"], on: connection).topics.first?.partitions.first else { return false }
                return partition.replicaNodes == target && target.contains(partition.leaderId) && Set(partition.isrNodes) == Set(target)
            }
            try await connection.close()
            try await control.close()
        }
    }

    @Test("A session expiry clears the cache; with the new session it loads again, without what was deleted meanwhile and with what was made")
    func sessionExpiry() async throws {
        try await Self.using(try await TestCluster.start(brokers: 3)) { cluster in
            let other = try await cluster.connection(2)
            for name in ["kept", "dropped"] { #expect(try await other.createTopic(name, partitions: 2, replicationFactor: 2).errorCode == 0) }
            let cache = try Self.cache(cluster, 1)
            try await eventually("broker 1's cache holds both topics") { cache.loaded && cache.held.topics == ["kept", "dropped"] }
            let expired = try #require(cluster.broker(1)?.dispatcher.cluster?.session.sessionID)
            await cluster.coordinator.expireSession(expired)
            #expect(try await ClusterTopicAdminTests.deleteTopics(["dropped"], on: other) == [0])
            #expect(try await other.createTopic("added", partitions: 2, replicationFactor: 2).errorCode == 0)
            try await eventually("broker 1 rejoined and its cache holds what coordination has") {
                guard let session = cluster.broker(1)?.dispatcher.cluster?.session, session.sessionID != expired, session.state == .connected else { return false }
                let held = cache.held
                return cache.loaded && held.topics == ["kept", "added"] && held.followed == ["kept", "added"]
            }
            let asked = try await cluster.connection(1)
            #expect(try await Self.metadata(nil, on: asked).topics.compactMap(\.name).sorted() == ["added", "kept"])
            try await asked.close()
            try await other.close()
        }
    }
}
