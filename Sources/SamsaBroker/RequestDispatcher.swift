import NIOCore
import NIOPosix
import SamsaCoordination
import SamsaProtocol
import SamsaStorage

/// Decodes one request frame, runs its API's handler and encodes the response (Kafka's `KafkaApis`).
/// Handlers are in one file per API (`Broker+Produce.swift`, ...). Blocking file work goes to the I/O
/// thread pool; nothing here blocks the caller's thread.
final class RequestDispatcher: Sendable {
    let configuration: BrokerConfiguration
    let logs: LogManager
    let topics: TopicTable
    let notifier = AppendNotifier()
    let groups = GroupCoordinator()
    let writers = PartitionWriters()
    let producerIds: ProducerIdAllocator
    let offsets: OffsetStore
    let io: NIOThreadPool
    let retention: LogRetention
    /// Host and port that Metadata advertises.
    let advertised: (host: String, port: Int32)
    /// The cluster side, for a broker with `configuration.cluster`.
    let cluster: Cluster?

    init(
        configuration: BrokerConfiguration, logs: LogManager, offsets: OffsetStore, producerIds: ProducerIdAllocator, io: NIOThreadPool,
        advertised: (host: String, port: Int32), topicConfigs: [String: TopicConfigFile.Entry] = [:],
        cluster: (session: RenewableSession, epochs: LeaderEpochs, group: any EventLoopGroup)? = nil
    ) {
        self.configuration = configuration
        self.producerIds = producerIds
        self.offsets = offsets
        self.logs = logs
        self.topics = TopicTable(
            logs: logs, dataDirectory: configuration.dataDirectory, baseConfiguration: configuration.logConfiguration, configs: topicConfigs)
        self.io = io
        self.retention = LogRetention(logs: logs, io: io) { [configuration] message in configuration.log(message) }
        self.advertised = advertised
        if let settings = configuration.cluster, let cluster {
            self.cluster = Cluster(
                brokerId: configuration.brokerId, settings: settings, session: cluster.session, topics: topics, writers: writers,
                epochs: cluster.epochs, group: cluster.group, io: io, notifier: notifier, dataDirectory: configuration.dataDirectory,
                log: { [configuration] message in configuration.log(message, level: .info) })
        } else {
            self.cluster = nil
        }
    }

    /// The response frame for a request frame (without its size prefix), or nil when the request
    /// expects none (Produce with acks 0). Throws `ProtocolError` for bytes that do not decode: the
    /// connection is then closed. A fetch with `zeroCopyFetch` comes as encoded parts around file
    /// ranges of the segments (the caller writes them in order and closes the ranges).
    func respond(to frame: ByteBuffer) async throws -> ResponseFrame? {
        let (header, body) = try KafkaFraming.decodeRequestHeader(frame)
        let version = header.requestApiVersion
        if configuration.logRequests {
            let name = ApiKey(rawValue: header.requestApiKey).map { "\($0)" } ?? "api \(header.requestApiKey)"
            configuration.log("\(name) v\(version) #\(header.correlationId) from \(header.clientId ?? "-")", level: .info)
        }
        guard let key = ApiKey(rawValue: header.requestApiKey), let supported = SupportedApis.versions[key] else {
            return Self.unsupported(correlationId: header.correlationId)
        }
        guard supported.contains(version) else {
            if key == .apiVersions { return .buffer(apiVersionsTooNew(correlationId: header.correlationId)) }
            return Self.unsupported(correlationId: header.correlationId)
        }
        let id = header.correlationId
        switch key {
        case .apiVersions:
            return encode(apiVersions(try ApiVersionsRequest(decoding: body, version: version)), version, id)
        case .metadata:
            return encode(await metadata(try MetadataRequest(decoding: body, version: version), version: version), version, id)
        case .produce:
            let request = try ProduceRequest(decoding: body, version: version)
            let response = await produce(request)
            return request.acks == 0 ? nil : encode(response, version, id)
        case .fetch:
            let request = try FetchRequest(decoding: body, version: version)
            let (response, slices) = await fetch(request, version: version, zeroCopy: configuration.zeroCopyFetch)
            guard slices.contains(where: { $0 != nil }) else { return encode(response, version, id) }
            return .spliced(
                SplicedResponse(
                    KafkaFraming.encodeResponse(
                        response, version: version, correlationId: id, splicing: slices.map { slice in slice.map { ($0, length: $0.length) } })))
        case .listOffsets:
            return encode(await listOffsets(try ListOffsetsRequest(decoding: body, version: version)), version, id)
        case .createTopics:
            return encode(await createTopics(try CreateTopicsRequest(decoding: body, version: version)), version, id)
        case .deleteTopics:
            return encode(await deleteTopics(try DeleteTopicsRequest(decoding: body, version: version), version: version), version, id)
        case .describeConfigs:
            return encode(describeConfigs(try DescribeConfigsRequest(decoding: body, version: version)), version, id)
        case .offsetForLeaderEpoch:
            return encode(offsetForLeaderEpoch(try OffsetForLeaderEpochRequest(decoding: body, version: version)), version, id)
        case .initProducerId:
            return encode(await initProducerId(try InitProducerIdRequest(decoding: body, version: version)), version, id)
        case .findCoordinator:
            return encode(await findCoordinator(try FindCoordinatorRequest(decoding: body, version: version), version: version), version, id)
        case .joinGroup:
            let request = try JoinGroupRequest(decoding: body, version: version)
            return encode(await joinGroup(request, version: version, clientId: header.clientId ?? ""), version, id)
        case .syncGroup:
            return encode(await syncGroup(try SyncGroupRequest(decoding: body, version: version)), version, id)
        case .heartbeat:
            return encode(await heartbeat(try HeartbeatRequest(decoding: body, version: version)), version, id)
        case .leaveGroup:
            return encode(await leaveGroup(try LeaveGroupRequest(decoding: body, version: version), version: version), version, id)
        case .offsetCommit:
            return encode(await offsetCommit(try OffsetCommitRequest(decoding: body, version: version)), version, id)
        case .offsetFetch:
            return encode(offsetFetch(try OffsetFetchRequest(decoding: body, version: version), version: version), version, id)
        case .listGroups:
            return encode(await listGroups(try ListGroupsRequest(decoding: body, version: version)), version, id)
        case .describeGroups:
            return encode(await describeGroups(try DescribeGroupsRequest(decoding: body, version: version)), version, id)
        }
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
