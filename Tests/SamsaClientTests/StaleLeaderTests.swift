import NIOCore
import NIOPosix
import SamsaProtocol
import Synchronization
import Testing
@testable import SamsaClient
import SamsaTestSupport

/// A scripted Kafka endpoint for what one real broker cannot show: a leader that says it no longer
/// leads. It is node 7, leader of `moved-0`, answers the first Produce and the first Fetch with
/// NOT_LEADER_OR_FOLLOWER (or, `silent`, does not answer the first Produce at all) and later ones
/// normally, and counts the Metadata requests it gets.
final class StaleLeaderBroker: Sendable {
    let silent: Bool
    init(silent: Bool = false) { self.silent = silent }

    struct Counts: Sendable {
        var metadata = 0
        var produce = 0
        var fetch = 0
    }

    let counts = Mutex(Counts())
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let channel = Mutex<(any Channel)?>(nil)

    var port: Int { channel.withLock { $0!.localAddress!.port! } }

    func start() async throws {
        let bound = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: 1 << 24)))
                    try child.pipeline.syncOperations.addHandler(Answerer(broker: self))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        channel.withLock { $0 = bound }
    }

    func stop() async throws {
        try await channel.withLock { $0 }?.close()
        try await group.shutdownGracefully()
    }

    func respond(to frame: ByteBuffer) throws -> ByteBuffer? {
        let (header, body) = try KafkaFraming.decodeRequestHeader(frame)
        let version = header.requestApiVersion, id = header.correlationId
        switch ApiKey(rawValue: header.requestApiKey) {
        case .apiVersions:
            var response = ApiVersionsResponse()
            response.apiKeys = [(ApiKey.produce, Int16(3), Int16(9)), (.fetch, 4, 12), (.metadata, 1, 12), (.listOffsets, 1, 7), (.apiVersions, 0, 3)]
                .map { key, low, high in
                    var entry = ApiVersionsResponse.ApiVersion()
                    entry.apiKey = key.rawValue
                    entry.minVersion = low
                    entry.maxVersion = high
                    return entry
                }
            return KafkaFraming.encodeResponse(response, version: version, correlationId: id)
        case .metadata:
            counts.withLock { $0.metadata += 1 }
            var node = MetadataResponse.MetadataResponseBroker()
            node.nodeId = 7
            node.host = "127.0.0.1"
            node.port = Int32(port)
            var partition = MetadataResponse.MetadataResponsePartition()
            partition.leaderId = 7
            partition.leaderEpoch = 3
            partition.replicaNodes = [7]
            partition.isrNodes = [7]
            var topic = MetadataResponse.MetadataResponseTopic()
            topic.name = "moved"
            topic.partitions = [partition]
            let request = try MetadataRequest(decoding: body, version: version)
            var response = MetadataResponse()
            response.brokers = [node]
            response.controllerId = 7
            // As Kafka: an empty list asks for no topics, a null one for all.
            if request.topics.map({ $0.contains { $0.name == "moved" } }) ?? true { response.topics = [topic] }
            return KafkaFraming.encodeResponse(response, version: version, correlationId: id)
        case .produce:
            let request = try ProduceRequest(decoding: body, version: version)
            let first = counts.withLock { counts in
                counts.produce += 1
                return counts.produce == 1
            }
            if first && silent { return nil }
            var result = ProduceResponse.PartitionProduceResponse()
            result.index = request.topicData[0].partitionData[0].index
            if first { result.errorCode = ErrorCode.notLeaderOrFollower.rawValue } else { result.baseOffset = 42 }
            var topic = ProduceResponse.TopicProduceResponse()
            topic.name = request.topicData[0].name
            topic.partitionResponses = [result]
            var response = ProduceResponse()
            response.responses = [topic]
            return KafkaFraming.encodeResponse(response, version: version, correlationId: id)
        case .fetch:
            let request = try FetchRequest(decoding: body, version: version)
            let first = counts.withLock { counts in
                counts.fetch += 1
                return counts.fetch == 1
            }
            var data = FetchResponse.PartitionData()
            data.partitionIndex = request.topics[0].partitions[0].partition
            if first { data.errorCode = ErrorCode.notLeaderOrFollower.rawValue } else { data.highWatermark = 5 }
            data.records = ByteBuffer()
            var topic = FetchResponse.FetchableTopicResponse()
            topic.topic = request.topics[0].topic
            topic.partitions = [data]
            var response = FetchResponse()
            response.responses = [topic]
            return KafkaFraming.encodeResponse(response, version: version, correlationId: id)
        default:
            throw ProtocolError("unexpected request \(header.requestApiKey)")
        }
    }

    private final class Answerer: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let broker: StaleLeaderBroker
        init(broker: StaleLeaderBroker) { self.broker = broker }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            do {
                if let response = try broker.respond(to: unwrapInboundIn(data)) { context.writeAndFlush(wrapOutboundOut(response), promise: nil) }
            } catch {
                context.close(promise: nil)
            }
        }
    }
}

@Suite("Client metadata refresh on a stale leader", .offCooperativePool)
struct StaleLeaderTests {
    static func with(silent: Bool = false, _ body: (StaleLeaderBroker, KafkaClient) async throws -> Void) async throws {
        let broker = StaleLeaderBroker(silent: silent)
        try await broker.start()
        let client = try await KafkaClient.connect(
            bootstrap: "127.0.0.1:\(broker.port)", configuration: ClientConfiguration(requestTimeoutMilliseconds: 200, retryBackoffMilliseconds: 1))
        do {
            try await body(broker, client)
        } catch {
            await client.close()
            try await broker.stop()
            throw error
        }
        await client.close()
        try await broker.stop()
    }

    @Test("Produce answered NOT_LEADER_OR_FOLLOWER refreshes metadata and resends the batch")
    func produceRetriesAfterRefresh() async throws {
        try await Self.with { broker, client in
            let producer = client.makeProducer(KafkaProducerConfiguration(lingerMilliseconds: 0))
            let before = broker.counts.withLock { $0.metadata }
            let metadata = try await producer.sendAndWait(topic: "moved", partition: 0, value: ByteBuffer(string: "x"))
            #expect(metadata.offset == 42)
            let counts = broker.counts.withLock { $0 }
            #expect(counts.produce == 2)
            // One lookup for the topic's partitions, and at least one more after the stale-leader answer.
            #expect(counts.metadata >= before + 2)
            await producer.close()
        }
    }

    @Test("Fetch answered NOT_LEADER_OR_FOLLOWER refreshes metadata and fetches again")
    func fetchRetriesAfterRefresh() async throws {
        try await Self.with { broker, client in
            _ = try await client.topicMetadata("moved")
            let before = broker.counts.withLock { $0.metadata }
            let fetched = try await client.fetch(topic: "moved", partition: 0, offset: 0, maxWaitMilliseconds: 0)
            #expect(fetched.highWatermark == 5)
            let counts = broker.counts.withLock { $0 }
            #expect(counts.fetch == 2)
            #expect(counts.metadata == before + 1)
            #expect(client.cachedMetadata.topics["moved"]?.partitions.first?.leaderEpoch == 3)
        }
    }

    @Test("A Produce that is never answered times out: the connection is closed and the batch resent on a new one", .timeLimit(.minutes(1)))
    func unansweredProduceIsRetried() async throws {
        try await Self.with(silent: true) { broker, client in
            let producer = client.makeProducer(KafkaProducerConfiguration(lingerMilliseconds: 0, requestTimeoutMilliseconds: 100))
            let metadata = try await producer.sendAndWait(topic: "moved", partition: 0, value: ByteBuffer(string: "x"))
            #expect(metadata.offset == 42)
            #expect(broker.counts.withLock { $0.produce } == 2)
            await producer.close()
        }
    }
}
