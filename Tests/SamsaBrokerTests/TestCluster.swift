import Foundation
import Logging
import NIOCore
import SamsaCoordination
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Synchronization
@testable import SamsaBroker
import SamsaTestSupport

/// Which broker-to-broker links are cut (the network seam between brokers in one process): a cut
/// link (from, to) stops `from`'s fetcher from talking to `to`.
final class LinkTable: Sendable {
    private let cut = Mutex<Set<[BrokerID]>>([])

    func isOpen(from: BrokerID, to: BrokerID) -> Bool { !cut.withLock { $0.contains([from, to]) } }
    func cut(_ from: BrokerID, _ to: BrokerID) { cut.withLock { _ = $0.insert([from, to]) } }
    func heal() { cut.withLock { $0.removeAll() } }
    /// Heals the links into `broker`.
    func heal(to broker: BrokerID) { cut.withLock { $0 = $0.filter { $0[1] != broker } } }
}

/// Brokers 1...n in this process on one embedded coordinator, each with its own data directory,
/// started and stopped one by one. `stop` removes everything.
final class TestCluster: Sendable {
    let coordinator: EmbeddedCoordinator
    let links = LinkTable()
    let lagMs: Int
    private let root: String
    private let brokers = Mutex<[BrokerID: Broker]>([:])
    /// The tests' own session, for reading the state nodes.
    private let observer: EmbeddedSession

    init(lagMs: Int) throws {
        coordinator = try EmbeddedCoordinator.open(minimumSessionTimeout: .milliseconds(200))
        observer = try coordinator.connect(sessionTimeout: .seconds(30))
        root = temporaryPath("samsa-cluster")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        self.lagMs = lagMs
    }

    static func start(brokers count: Int32 = 3, lagMs: Int = 30_000) async throws -> TestCluster {
        let cluster = try TestCluster(lagMs: lagMs)
        for id in 1...count { try await cluster.start(BrokerID(id)) }
        return cluster
    }

    func directory(_ id: BrokerID) -> String { "\(root)/broker-\(id)" }

    /// Starts broker `id`; `configure` may change its configuration last (a fault-injecting file
    /// system, a logger, shorter back-offs).
    func start(_ id: BrokerID, configure: (inout BrokerConfiguration) -> Void = { _ in }) async throws {
        let coordinator = coordinator
        let links = links
        var configuration = BrokerConfiguration(
            dataDirectory: directory(id), port: 0, brokerId: id.rawValue, logConfiguration: LogConfiguration(flushPolicy: .never), eventLoopThreads: 1,
            ioThreads: 2)
        configuration.cluster = ClusterSettings(
            connect: { try coordinator.connect(sessionTimeout: .seconds(10)) }, replicaLagTimeMaxMs: lagMs, replicaFetchWaitMaxMs: 100,
            linkOpen: { to in links.isOpen(from: id, to: BrokerID(to)) })
        if ProcessInfo.processInfo.environment["SAMSA_CLUSTER_LOG"] != nil {
            let tag = String(root.suffix(4))
            configuration.logRequests = true
            var logger = Logger(label: "\(tag) [\(id)]", factory: { label in StreamLogHandler.standardError(label: label) })
            logger.logLevel = .trace
            configuration.logger = logger
        }
        configuration.groupLimits.initialRebalanceDelay = .zero
        configure(&configuration)
        links.heal(to: id)
        let broker = try await Broker.start(configuration)
        brokers.withLock { $0[id] = broker }
    }

    /// Kills a broker as a crash would: first every link into it is cut (nobody fetches what it has
    /// not replicated yet), then it stops without handing over; `start` heals those links.
    func kill(_ id: BrokerID) async throws {
        for other in running where other != id { links.cut(other, id) }
        try await stop(id, controlled: false)
    }

    /// Stops a broker; `controlled: false` skips the hand-over of its leaderships (its coordination
    /// session still ends at once, as a crashed broker's would expire).
    func stop(_ id: BrokerID, controlled: Bool = false) async throws {
        guard let broker = brokers.withLock({ $0.removeValue(forKey: id) }) else { return }
        try await broker.stop(controlled: controlled)
    }

    func broker(_ id: BrokerID) -> Broker? { brokers.withLock { $0[id] } }
    var running: [BrokerID] { brokers.withLock { $0.keys.sorted() } }

    func connection(_ id: BrokerID) async throws -> TestConnection {
        try await TestConnection(port: try requireBroker(broker(id)).localAddress.port!)
    }

    func stopAll() async throws {
        for id in running { try await stop(id) }
        await observer.close()
        try coordinator.close()
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The state node of a partition, as coordination holds it.
    func state(_ topic: String, _ partition: Int32 = 0) async throws -> PartitionStateNode {
        try ClusterJSON.decode(PartitionStateNode.self, try await observer.data(ClusterPaths(root: "").state(topic, partition)).data)
    }

    /// Waits until every running ISR member of the partition knows its role at the state's epoch and
    /// the leader is the state's leader; returns the state.
    func settled(_ topic: String, _ partition: Int32 = 0, timeout: Duration = .seconds(30)) async throws -> PartitionStateNode {
        var settledState: PartitionStateNode?
        try await eventually("\(topic)-\(partition) has a leader that every replica knows", timeout: timeout) {
            let state = try await self.state(topic, partition)
            guard state.leader >= 0, running.contains(state.leader) else { return false }
            for id in running where state.isr.contains(id) {
                guard let replica = broker(id)?.dispatcher.cluster?.replicas.partition(TopicPartition(topic: topic, partition: partition)) else {
                    return false
                }
                let expected: Partition.Role = id == state.leader ? .leader : .follower(leader: state.leader)
                guard replica.role == expected, replica.leaderEpoch == state.leaderEpoch else { return false }
            }
            settledState = state
            return true
        }
        return settledState!
    }

    func log(_ id: BrokerID, _ topic: String, _ partition: Int32 = 0) -> PartitionLog? {
        broker(id)?.dispatcher.topics.log(topic, partition)
    }

    /// The batches (base offset, leader epoch, bytes) of a broker's log below `end`.
    func batches(_ id: BrokerID, _ topic: String, _ partition: Int32 = 0, below end: Int64) throws -> [(Int64, Int32, [UInt8])] {
        guard let log = log(id, topic, partition) else { return [] }
        var result: [(Int64, Int32, [UInt8])] = []
        var offset = log.logStartOffset
        while offset < end, let bytes = try log.read(from: offset, maxBytes: 1 << 20) {
            var remaining = bytes
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                offset = batch.nextOffset
                guard batch.baseOffset < end else { return result }
                result.append((batch.baseOffset, batch.partitionLeaderEpoch, Array(batch.buffer.readableBytesView)))
            }
        }
        return result
    }

    /// The record values of a broker's log, from its start to its log end.
    func values(_ id: BrokerID, _ topic: String, _ partition: Int32 = 0) throws -> [String] {
        guard let log = log(id, topic, partition) else { return [] }
        var values: [String] = []
        for (_, _, bytes) in try batches(id, topic, partition, below: log.logEndOffset) {
            values += try ProduceFetchTests.values(in: ByteBuffer(bytes: bytes), from: 0)
        }
        return values
    }
}

struct BrokerNotRunning: Error {}

func requireBroker(_ broker: Broker?) throws -> Broker {
    guard let broker else { throw BrokerNotRunning() }
    return broker
}

extension TestConnection {
    /// Creates a topic with a replication factor and configs; returns the result.
    func createTopic(_ name: String, partitions: Int32 = 1, replicationFactor: Int16, configs: [String: String] = [:]) async throws
        -> CreateTopicsResponse.CreatableTopicResult
    {
        var topic = CreateTopicsRequest.CreatableTopic()
        topic.name = name
        topic.numPartitions = partitions
        topic.replicationFactor = replicationFactor
        topic.configs = configs.sorted { $0.key < $1.key }.map { name, value in
            var config = CreateTopicsRequest.CreatableTopicConfig()
            config.name = name
            config.value = value
            return config
        }
        var request = CreateTopicsRequest()
        request.topics = [topic]
        guard let result = try await self.request(request, version: 5, expecting: CreateTopicsResponse.self).topics.first else {
            throw ConnectionClosed()
        }
        return result
    }

    /// Produces one batch of `count` records `value-<first>...` with a long timeout.
    func produce(_ topic: String, count: Int, startingAt first: Int, acks: Int16 = -1, partition: Int32 = 0, timeoutMs: Int32 = 30_000) async throws
        -> ProduceResponse.PartitionProduceResponse
    {
        var data = ProduceRequest.PartitionProduceData()
        data.index = partition
        data.records = try makeBatch(count: count, startingAt: first).buffer
        var topicData = ProduceRequest.TopicProduceData()
        topicData.name = topic
        topicData.partitionData = [data]
        var request = ProduceRequest()
        request.acks = acks
        request.timeoutMs = timeoutMs
        request.topicData = [topicData]
        guard let result = try await self.request(request, version: 9, expecting: ProduceResponse.self).responses.first?.partitionResponses.first else {
            throw ConnectionClosed()
        }
        return result
    }
}
