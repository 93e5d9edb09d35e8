import Foundation
import NIOCore
import NIOPosix
import SamsaProtocol
import SamsaRecords
import SamsaStorage
@testable import SamsaBroker
import SamsaTestSupport

/// A broker on 127.0.0.1 with an ephemeral port and a fresh data directory, stopped and removed by `stop`.
struct TestBroker {
    let broker: Broker
    let directory: String
    var port: Int { broker.localAddress.port! }

    static func start(
        autoCreateTopics: Bool = false, flushPolicy: FlushPolicy = .never, maxRequestBytes: Int = 100 << 20, directory existing: String? = nil,
        zeroCopyFetch: Bool = true, segmentBytes: Int? = nil, maxBrokerPartitions: Int = BrokerConfiguration.defaultMaxBrokerPartitions,
        configure: (inout BrokerConfiguration) -> Void = { _ in }
    ) async throws -> TestBroker {
        let directory = existing ?? temporaryPath("samsa-broker")
        let configuration = BrokerConfiguration(
            dataDirectory: directory, port: 0, autoCreateTopics: autoCreateTopics, logConfiguration: LogConfiguration(flushPolicy: flushPolicy),
            maxRequestBytes: maxRequestBytes, eventLoopThreads: 1, ioThreads: 2)
        var settings = configuration
        settings.zeroCopyFetch = zeroCopyFetch
        settings.maxBrokerPartitions = maxBrokerPartitions
        // Groups form at once in tests (Kafka's 3 s initial delay is tested on its own).
        settings.groupLimits.initialRebalanceDelay = .zero
        if let segmentBytes { settings.logConfiguration.segmentBytes = segmentBytes }
        configure(&settings)
        return TestBroker(broker: try await Broker.start(settings), directory: directory)
    }

    /// Stops the broker and removes its data directory unless `keepingData`.
    func stop(keepingData: Bool = false) async throws {
        try await broker.stop()
        if !keepingData { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Runs `body` against a started broker and stops it however `body` ends.
    static func with(autoCreateTopics: Bool = false, flushPolicy: FlushPolicy = .never, _ body: (TestBroker) async throws -> Void) async throws {
        let broker = try await start(autoCreateTopics: autoCreateTopics, flushPolicy: flushPolicy)
        do {
            try await body(broker)
        } catch {
            try await broker.stop()
            throw error
        }
        try await broker.stop()
    }
}

/// A raw Kafka connection for tests: sends frames, reads response frames in order.
final class TestConnection: Sendable {
    let channel: any Channel
    private let frames: AsyncStream<ByteBuffer>
    private let iterator: IteratorBox

    /// `source`: the local IP address to connect from (any 127.x.y.z works on loopback), else any.
    init(port: Int, from source: String? = nil) async throws {
        // NIO's shared group, not one per connection: hundreds of tests run at once, and a group per
        // connection (a thread, an epoll, an eventfd and a timerfd each) pushed the test process past
        // 1,350 descriptors, where Foundation's Process.run() over-reads /proc/self/fd and crashes
        // (swift-corelibs-foundation #5472).
        let group = MultiThreadedEventLoopGroup.singleton
        let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
        frames = stream
        iterator = IteratorBox(stream.makeAsyncIterator())
        var bootstrap = ClientBootstrap(group: group)
        if let source { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0)) }
        channel = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: 1 << 30)))
                    try channel.pipeline.syncOperations.addHandler(FrameCollector(continuation: continuation))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    func close() async throws {
        try? await channel.close()
    }

    func send(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes)
    }

    /// The next response frame (without its size), or nil once the broker closed the connection.
    func receive() async throws -> ByteBuffer? {
        await iterator.next()
    }

    /// Sends a request and decodes its response.
    func request<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, version: Int16, expecting: Response.Type, correlationId: Int32 = 1
    ) async throws -> Response {
        try await send(KafkaFraming.encodeRequest(request, version: version, correlationId: correlationId, clientId: "samsa-tests"))
        guard let frame = try await receive() else { throw ConnectionClosed() }
        let (id, body) = try KafkaFraming.decodeResponse(frame, as: Response.self, version: version)
        guard id == correlationId else { throw WrongCorrelation(expected: correlationId, got: id) }
        return body
    }

    struct ConnectionClosed: Error {}
    struct WrongCorrelation: Error {
        let expected: Int32
        let got: Int32
    }

    /// Hands frames from the event loop to the test; the stream ends when the connection closes.
    private final class FrameCollector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let continuation: AsyncStream<ByteBuffer>.Continuation
        init(continuation: AsyncStream<ByteBuffer>.Continuation) { self.continuation = continuation }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            continuation.yield(unwrapInboundIn(data))
        }
        func channelInactive(context: ChannelHandlerContext) {
            continuation.finish()
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    /// One reader at a time (tests read sequentially).
    private final class IteratorBox: @unchecked Sendable {
        // @unchecked: a test reads its connection from one task at a time.
        var iterator: AsyncStream<ByteBuffer>.Iterator
        init(_ iterator: AsyncStream<ByteBuffer>.Iterator) { self.iterator = iterator }
        func next() async -> ByteBuffer? { await iterator.next() }
    }
}

/// One record batch of `count` records `value-<n>`.
func makeBatch(
    count: Int, compression: CompressionCodec = .none, startingAt first: Int = 0, producer: (id: Int64, epoch: Int16, sequence: Int32)? = nil
) throws -> RecordBatch {
    var builder = RecordBatchBuilder(compression: compression)
    if let producer {
        builder.producerId = producer.id
        builder.producerEpoch = producer.epoch
        builder.baseSequence = producer.sequence
    }
    for index in first..<(first + count) {
        builder.append(timestamp: 1_700_000_000_000 + Int64(index), key: nil, value: ByteBuffer(string: "value-\(index)"))
    }
    return try builder.build()
}
