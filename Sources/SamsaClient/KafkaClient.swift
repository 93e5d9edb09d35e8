import NIOCore
import NIOPosix
import SamsaProtocol
import Synchronization

/// A native Swift Kafka client: bootstraps from one or more brokers, negotiates API versions per
/// connection, keeps the cluster's metadata (refreshed when a broker says it is stale) and one pipelined
/// connection per broker. Reads, offsets and admin calls are here; producing is `KafkaProducer`.
public final class KafkaClient: Sendable {
    public let configuration: ClientConfiguration
    public let bootstrap: [BrokerAddress]
    let group: MultiThreadedEventLoopGroup
    private let state = Mutex(State())

    private struct State {
        var metadata = ClusterMetadata()
        /// Connections by node id (or, for bootstrap addresses, by -1 - index), shared while connecting.
        var connections: [Int32: Task<BrokerConnection, any Error>] = [:]
        var closed = false
    }

    private init(bootstrap: [BrokerAddress], configuration: ClientConfiguration) {
        self.bootstrap = bootstrap
        self.configuration = configuration
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
    }

    /// Connects to the first reachable bootstrap broker and reads the cluster's brokers.
    public static func connect(bootstrap: [BrokerAddress], configuration: ClientConfiguration = ClientConfiguration()) async throws -> KafkaClient {
        precondition(!bootstrap.isEmpty, "at least one bootstrap broker")
        let client = KafkaClient(bootstrap: bootstrap, configuration: configuration)
        do {
            _ = try await client.refreshMetadata(topics: [])
        } catch {
            await client.close()
            throw error
        }
        return client
    }

    /// `connect(bootstrap:)` with `HOST:PORT[,HOST:PORT...]`.
    public static func connect(bootstrap: String, configuration: ClientConfiguration = ClientConfiguration()) async throws -> KafkaClient {
        guard let addresses = BrokerAddress.list(bootstrap) else {
            throw KafkaClientError.connectionFailed("expected HOST:PORT[,HOST:PORT...], got '\(bootstrap)'")
        }
        return try await connect(bootstrap: addresses, configuration: configuration)
    }

    /// Closes every connection.
    public func close() async {
        let tasks = state.withLock { state in
            state.closed = true
            defer { state.connections = [:] }
            return Array(state.connections.values)
        }
        for task in tasks { await (try? task.value)?.close() }
        try? await group.shutdownGracefully()
    }

    // MARK: - Metadata

    /// The metadata known now (no request).
    public var cachedMetadata: ClusterMetadata { state.withLock { $0.metadata } }

    /// Asks a broker for the metadata of `topics` (nil: every topic) and merges it into the cache.
    @discardableResult
    public func refreshMetadata(topics: [String]?, allowAutoTopicCreation: Bool = false) async throws -> ClusterMetadata {
        var request = MetadataRequest()
        request.topics = topics.map { names in
            names.map { name in
                var topic = MetadataRequest.MetadataRequestTopic()
                topic.name = name
                return topic
            }
        }
        request.allowAutoTopicCreation = allowAutoTopicCreation
        let response = try await withAnyConnection { connection in
            try await connection.request(request, api: .metadata, expecting: MetadataResponse.self, timeout: requestTimeout())
        }
        let fresh = ClusterMetadata(response)
        return state.withLock { state in
            if topics == nil { state.metadata.topics = [:] }
            state.metadata.merge(fresh)
            return state.metadata
        }
    }

    /// The topic's metadata, refreshing while the topic is unknown or a partition has no leader (up to
    /// `retries` times, so a topic created a moment ago is found).
    public func topicMetadata(_ topic: String) async throws -> TopicMetadata {
        if let known = state.withLock({ $0.metadata.topics[topic] }), Self.isUsable(known) { return known }
        var attempt = 0
        while true {
            let metadata = try await refreshMetadata(topics: [topic])
            if let entry = metadata.topics[topic], Self.isUsable(entry) { return entry }
            attempt += 1
            let code = metadata.topics[topic]?.error ?? .unknownTopicOrPartition
            guard attempt <= configuration.retries, KafkaClientError.retriableCodes.contains(code) || code == .none else {
                throw KafkaClientError.broker(code, "metadata of topic \(topic)")
            }
            try await backoff()
        }
    }

    private static func isUsable(_ topic: TopicMetadata) -> Bool {
        topic.error == .none && !topic.partitions.isEmpty && topic.partitions.allSatisfy { $0.leader >= 0 }
    }

    /// The partition's leader from the cache, else from fresh metadata (asked again while the topic is
    /// unknown or leaderless, up to `retries` times). A partition past the topic's last is an error.
    func leader(topic: String, partition: Int32) async throws -> PartitionMetadata {
        if let known = cachedMetadata.leader(topic: topic, partition: partition) { return known }
        var attempt = 0
        while true {
            let metadata = try await refreshMetadata(topics: [topic])
            if let known = metadata.leader(topic: topic, partition: partition) { return known }
            let entry = metadata.topics[topic]
            if let entry, entry.error == .none, !entry.partitions.isEmpty, Int(partition) >= entry.partitions.count || partition < 0 {
                throw KafkaClientError.unknownPartition(topic: topic, partition: partition)
            }
            let code = entry.map { $0.error == .none ? ErrorCode.leaderNotAvailable : $0.error } ?? .unknownTopicOrPartition
            attempt += 1
            guard attempt <= configuration.retries, KafkaClientError.retriableCodes.contains(code) else {
                throw code == .unknownTopicOrPartition
                    ? KafkaClientError.unknownPartition(topic: topic, partition: partition) : KafkaClientError.broker(code, "\(topic)-\(partition)")
            }
            try await backoff()
        }
    }

    /// Forgets the cached leaders of `topic`, so the next call asks again.
    func invalidate(topic: String) {
        state.withLock { _ = $0.metadata.topics.removeValue(forKey: topic) }
    }

    // MARK: - Connections

    /// The connection to node `id` (connecting if needed).
    func connection(node id: Int32) async throws -> BrokerConnection {
        if cachedMetadata.brokers[id] == nil { try await refreshMetadata(topics: []) }
        guard let node = cachedMetadata.brokers[id] else {
            throw KafkaClientError.connectionFailed("node \(id) is not in the cluster's metadata")
        }
        return try await connection(key: id, address: BrokerAddress(host: node.host, port: node.port))
    }

    private func connection(key: Int32, address: BrokerAddress) async throws -> BrokerConnection {
        let configuration = configuration, group = group
        let task: Task<BrokerConnection, any Error> = try state.withLock { state in
            guard !state.closed else { throw KafkaClientError.connectionFailed("the client is closed") }
            if let existing = state.connections[key] { return existing }
            let task = Task {
                try await BrokerConnection.connect(
                    host: address.host, port: address.port, group: group, clientId: configuration.clientId,
                    connectTimeout: .milliseconds(configuration.connectTimeoutMilliseconds), maxResponseBytes: configuration.maxResponseBytes)
            }
            state.connections[key] = task
            return task
        }
        do {
            let connection = try await task.value
            if connection.isActive { return connection }
            drop(key: key, task: task)
            return try await self.connection(key: key, address: address)
        } catch {
            drop(key: key, task: task)
            throw error
        }
    }

    private func drop(key: Int32, task: Task<BrokerConnection, any Error>) {
        state.withLock { state in
            if state.connections[key] == task { state.connections[key] = nil }
        }
    }

    /// Runs `body` on a connection to some broker (a known node, else a bootstrap address), trying the
    /// next one when a connection fails.
    func withAnyConnection<T: Sendable>(_ body: (BrokerConnection) async throws -> T) async throws -> T {
        let known = cachedMetadata.brokers.values.sorted { $0.id < $1.id }
        var candidates: [(Int32, BrokerAddress)] = known.map { ($0.id, BrokerAddress(host: $0.host, port: $0.port)) }
        candidates += bootstrap.enumerated().map { (-1 - Int32($0.offset), $0.element) }
        var lastError: any Error = KafkaClientError.connectionFailed("no broker to connect to")
        for attempt in 0...configuration.retries {
            for (key, address) in candidates {
                do {
                    return try await body(try await connection(key: key, address: address))
                } catch let error as KafkaClientError where error.isConnectionFailure {
                    lastError = error
                }
            }
            if attempt < configuration.retries { try await backoff() }
        }
        throw lastError
    }

    /// The client's request timeout, plus the time the broker may take on purpose (a fetch's max wait,
    /// a produce's or admin call's own timeout).
    func requestTimeout(plus milliseconds: Int64 = 0) -> TimeAmount {
        .milliseconds(configuration.requestTimeoutMilliseconds + max(0, milliseconds))
    }

    func backoff() async throws {
        try await Task.sleep(for: .milliseconds(configuration.retryBackoffMilliseconds))
    }

    /// Runs `body` against the partition's leader, refreshing metadata and retrying on stale-leader and
    /// connection errors.
    func withLeader<T: Sendable>(
        topic: String, partition: Int32, _ body: (BrokerConnection, PartitionMetadata) async throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            do {
                let leader = try await leader(topic: topic, partition: partition)
                return try await body(try await connection(node: leader.leader), leader)
            } catch let error as KafkaClientError where error.isRetriable && attempt < configuration.retries {
                attempt += 1
                if case .broker(let code, _) = error, KafkaClientError.staleMetadataCodes.contains(code) { invalidate(topic: topic) }
                if error.isConnectionFailure { invalidate(topic: topic) }
                try await backoff()
            }
        }
    }
}

extension KafkaClientError {
    var isConnectionFailure: Bool {
        if case .connectionFailed = self { return true }
        return false
    }
}
