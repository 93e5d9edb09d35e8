import SamsaWaiting
import NIOCore
import NIOPosix
import SamsaCoordination
import SamsaProtocol
import SamsaStorage

/// Decodes one request frame, runs its API's handler and encodes the response (Kafka's `KafkaApis`).
/// Handlers are in one file per API (`Handlers/RequestDispatcher+Produce.swift`, ...). Blocking file work goes to the I/O
/// thread pool; nothing here blocks the caller's thread.
final class RequestDispatcher: Sendable {
    let configuration: BrokerConfiguration
    let logs: LogManager
    /// The topics and their partitions: where each partition's state lives.
    let topics: TopicTable
    /// Every group's coordinator: the shards of the `__consumer_offsets` partitions led here.
    let groups: GroupCoordinators
    let io: NIOThreadPool
    let retention: LogRetention
    /// Produces that failed in storage (a full disk fails every one): a warning a minute, with the count.
    let produceFailures = LogThrottle(every: .seconds(60))
    /// Host and port that Metadata advertises.
    let advertised: (host: String, port: Int32)
    /// The cluster side, for a broker with `configuration.cluster`.
    let cluster: Cluster?
    /// Brokers, topics and partition states for Metadata and CreateTopics: coordination in a cluster,
    /// this broker alone otherwise.
    let catalog: any TopicCatalog
    /// Producer ids for InitProducerId: unique across the cluster's brokers, or this broker's restarts.
    let producerIds: any ProducerIdSource
    /// Topic and broker configs for the AlterConfigs family: coordination in a cluster, the data
    /// directory otherwise.
    let configStore: any ConfigStore

    /// `cluster`: the coordination session and leader-epoch history of a broker in a cluster; without
    /// one the broker is a cluster of one (`Leadership.local`).
    init(
        configuration: BrokerConfiguration, logs: LogManager, legacyOffsets: LegacyOffsets? = nil, stagedOffsets: StagedOffsets? = nil, producerIds: ProducerIdAllocator, io: NIOThreadPool,
        group: any EventLoopGroup, advertised: (host: String, port: Int32), brokerConfigs: BrokerConfigs? = nil,
        topics stored: [String: StoredTopic] = [:],
        cluster: (session: RenewableSession, epochs: LeaderEpochs)? = nil
    ) {
        self.configuration = configuration
        self.logs = logs
        let timers = group.any()
        let context = PartitionContext(
            brokerId: BrokerID(configuration.brokerId), leadership: cluster.map { .replicated($0.epochs) } ?? .local,
            fetchWaits: Purgatory(timers: timers), produceWaits: Purgatory(timers: timers), isrChanges: IsrChangeCounts(),
            producerIdExpiration: configuration.producerIdExpiration, decompression: DecompressionPermits())
        self.topics = TopicTable(
            logs: logs, dataDirectory: configuration.dataDirectory, brokerConfigs: brokerConfigs ?? BrokerConfigs(configuration: configuration),
            stored: stored,
            context: context, maxPartitions: configuration.maxBrokerPartitions)
        self.io = io
        self.retention = LogRetention(logs: logs, io: io, logger: configuration.logger)
        self.advertised = advertised
        if let settings = configuration.cluster, let cluster {
            self.cluster = Cluster(
                brokerId: BrokerID(configuration.brokerId), settings: settings, session: cluster.session, topics: topics, epochs: cluster.epochs,
                group: group, io: io, dataDirectory: configuration.dataDirectory, logger: configuration.logger)
        } else {
            self.cluster = nil
        }
        catalog = self.cluster?.metadata
            ?? LocalCatalog(brokerId: BrokerID(configuration.brokerId), advertised: BrokerRegistration(host: advertised.host, port: advertised.port), topics: topics)
        self.producerIds = self.cluster?.producerIds ?? producerIds
        if let cluster = self.cluster {
            configStore = CoordinationConfigStore(session: cluster.session, paths: cluster.paths, topics: topics)
        } else {
            configStore = LocalConfigStore(topics: topics, dataDirectory: configuration.dataDirectory)
        }
        groups = GroupCoordinators(
            configuration: configuration, catalog: catalog, topics: topics, configStore: configStore, io: io, group: group, legacy: legacyOffsets,
            staged: stagedOffsets)
    }

    /// Long-polling fetches waiting for appends (tests: act once one waits).
    var fetchWaits: Purgatory<TopicPartition> { topics.context.fetchWaits }

    /// The response frame for a request frame (without its size prefix), or nil when the request
    /// expects none (Produce with acks 0). Throws `ProtocolError` for bytes that do not decode: the
    /// connection is then closed. Bytes after a request's last field are ignored, as Kafka ignores
    /// them (`decodeRequest`), and their count is left in `trailingBytes`. A fetch with
    /// `zeroCopyFetch` comes as encoded parts around file ranges of the segments (the caller writes
    /// them in order and closes the ranges). `clientHost` is where the connection comes from ("/IP",
    /// as Kafka shows a group member's host).
    func respond(to frame: ByteBuffer, trailingBytes: inout Int, clientHost: String = "") async throws -> ResponseFrame? {
        if let correlationId = Self.tooNewApiVersions(frame) { return .buffer(apiVersionsTooNew(correlationId: correlationId)) }
        let (header, body) = try KafkaFraming.decodeRequestHeader(frame)
        let version = header.requestApiVersion
        func decode<Request: KafkaMessage>(_: Request.Type) throws(ProtocolError) -> Request {
            let (request, trailing) = try Request.decodeRequest(body, version: version)
            trailingBytes = trailing
            return request
        }
        if configuration.logRequests {
            let name = ApiKey(rawValue: header.requestApiKey).map { "\($0)" } ?? "api \(header.requestApiKey)"
            configuration.logger.info(
                "request", metadata: ["api": "\(name)", "version": "\(version)", "correlation_id": "\(header.correlationId)", "client_id": "\(header.clientId ?? "-")"])
        }
        guard let key = ApiKey(rawValue: header.requestApiKey), let supported = SupportedApis.versions[key] else {
            return Self.unsupported(correlationId: header.correlationId)
        }
        guard supported.contains(version) else { return Self.unsupported(correlationId: header.correlationId) }
        let id = header.correlationId
        switch key {
        case .apiVersions:
            return encode(apiVersions(try decode(ApiVersionsRequest.self)), version, id)
        case .metadata:
            return encode(await metadata(try decode(MetadataRequest.self), version: version), version, id)
        case .produce:
            let request = try decode(ProduceRequest.self)
            let response = await produce(request)
            return request.acks == 0 ? nil : encode(response, version, id)
        case .fetch:
            return await fetchFrame(try decode(FetchRequest.self), version: version, correlationId: id)
        case .listOffsets:
            return encode(await listOffsets(try decode(ListOffsetsRequest.self)), version, id)
        case .createTopics:
            return encode(await createTopics(try decode(CreateTopicsRequest.self)), version, id)
        case .deleteTopics:
            return encode(await deleteTopics(try decode(DeleteTopicsRequest.self), version: version), version, id)
        case .describeConfigs:
            return encode(await describeConfigs(try decode(DescribeConfigsRequest.self)), version, id)
        case .alterConfigs:
            return encode(await alterConfigs(try decode(AlterConfigsRequest.self)), version, id)
        case .incrementalAlterConfigs:
            return encode(await incrementalAlterConfigs(try decode(IncrementalAlterConfigsRequest.self)), version, id)
        case .offsetForLeaderEpoch:
            return encode(offsetForLeaderEpoch(try decode(OffsetForLeaderEpochRequest.self)), version, id)
        case .initProducerId:
            return encode(await initProducerId(try decode(InitProducerIdRequest.self)), version, id)
        case .findCoordinator:
            return encode(await findCoordinator(try decode(FindCoordinatorRequest.self), version: version), version, id)
        case .joinGroup:
            let request = try decode(JoinGroupRequest.self)
            return encode(await joinGroup(request, version: version, clientId: header.clientId ?? "", clientHost: clientHost), version, id)
        case .syncGroup:
            return encode(await syncGroup(try decode(SyncGroupRequest.self)), version, id)
        case .heartbeat:
            return encode(await heartbeat(try decode(HeartbeatRequest.self)), version, id)
        case .leaveGroup:
            return encode(await leaveGroup(try decode(LeaveGroupRequest.self), version: version), version, id)
        case .offsetCommit:
            return encode(await offsetCommit(try decode(OffsetCommitRequest.self)), version, id)
        case .offsetFetch:
            return encode(await offsetFetch(try decode(OffsetFetchRequest.self), version: version), version, id)
        case .listGroups:
            return encode(await listGroups(try decode(ListGroupsRequest.self)), version, id)
        case .describeGroups:
            return encode(await describeGroups(try decode(DescribeGroupsRequest.self)), version, id)
        case .describeCluster:
            return encode(await describeCluster(try decode(DescribeClusterRequest.self)), version, id)
        case .deleteGroups:
            return encode(await deleteGroups(try decode(DeleteGroupsRequest.self)), version, id)
        case .offsetDelete:
            return encode(await offsetDelete(try decode(OffsetDeleteRequest.self)), version, id)
        case .createPartitions:
            return encode(await createPartitions(try decode(CreatePartitionsRequest.self)), version, id)
        case .electLeaders:
            return encode(await electLeaders(try decode(ElectLeadersRequest.self), version: version), version, id)
        case .deleteRecords:
            return encode(await deleteRecords(try decode(DeleteRecordsRequest.self)), version, id)
        case .describeLogDirs:
            return encode(await describeLogDirs(try decode(DescribeLogDirsRequest.self)), version, id)
        case .describeProducers:
            return encode(await describeProducers(try decode(DescribeProducersRequest.self)), version, id)
        case .alterPartitionReassignments:
            return encode(await alterPartitionReassignments(try decode(AlterPartitionReassignmentsRequest.self), version: version), version, id)
        case .listPartitionReassignments:
            return encode(await listPartitionReassignments(try decode(ListPartitionReassignmentsRequest.self)), version, id)
        }
    }

    /// The correlation id of an ApiVersions request at a version this broker does not serve, read
    /// from the fixed-position fields alone (key, version, correlation id): the rest of its header
    /// may be framed in a way this broker does not know, and it gets error 35 in the v0 layout all
    /// the same (KIP-511). Kafka derives the header layout from the version (flexible, v2, for any
    /// ApiVersions past 2) and closes a connection whose header then does not parse; answering
    /// costs nothing and tells any client what to use.
    static func tooNewApiVersions(_ frame: ByteBuffer) -> Int32? {
        guard frame.getInteger(at: frame.readerIndex, as: Int16.self) == ApiKey.apiVersions.rawValue,
            let version = frame.getInteger(at: frame.readerIndex + 2, as: Int16.self),
            let supported = SupportedApis.versions[.apiVersions], !supported.contains(version)
        else { return nil }
        return frame.getInteger(at: frame.readerIndex + 4, as: Int32.self)
    }

    private func encode<Response: KafkaMessage>(_ response: Response, _ version: Int16, _ correlationId: Int32) -> ResponseFrame {
        .buffer(KafkaFraming.encodeResponse(response, version: version, correlationId: correlationId))
    }

    /// For an API (or version) the broker does not serve: header v0 and the error code
    /// UNSUPPORTED_VERSION, which is how most response bodies start.
    static func unsupported(correlationId: Int32) -> ResponseFrame {
        .buffer(KafkaFraming.frame(allocator: ByteBufferAllocator()) { buffer in
            buffer.writeInteger(correlationId)
            buffer.writeInteger(ErrorCode.unsupportedVersion.rawValue)
        })
    }

    /// Runs blocking file work on the I/O pool.
    func onIOThread<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await io.runIfActive(body)
    }
}
