import Foundation
import Synchronization
import NIOCore
import NIOPosix
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Testing
@testable import SamsaBroker

/// Zero-copy fetch (record bytes sent from the segment files with sendfile) against the copying path,
/// through real sockets.
@Suite("Zero-copy fetch", .timeLimit(.minutes(3)))
struct ZeroCopyFetchTests {
    /// Fills topics `a` (3 partitions: several batches in three codecs, one batch, none) and `b`.
    static func fill(_ connection: TestConnection) async throws {
        _ = try await ProduceFetchTests.createTopic("a", partitions: 3, on: connection)
        _ = try await ProduceFetchTests.createTopic("b", partitions: 1, on: connection)
        var first = 0
        for (index, codec) in [CompressionCodec.none, .lz4, .zstd, .none, .zstd].enumerated() {
            let count = 3 + index * 4
            _ = try await ProduceFetchTests.produce([try makeBatch(count: count, compression: codec, startingAt: first)], to: "a", on: connection)
            first += count
        }
        _ = try await ProduceFetchTests.produce([try makeBatch(count: 7)], to: "a", partition: 1, on: connection)
        _ = try await ProduceFetchTests.produce([try makeBatch(count: 4), try makeBatch(count: 9, compression: .lz4, startingAt: 4)], to: "b", on: connection)
    }

    static func fetch(_ partitions: [(topic: String, partition: Int32, offset: Int64)], partitionMaxBytes: Int32 = 1 << 20, maxBytes: Int32 = .max)
        -> FetchRequest
    {
        var request = FetchRequest()
        request.maxBytes = maxBytes
        var topics: [FetchRequest.FetchTopic] = []
        for entry in partitions {
            var partition = FetchRequest.FetchPartition()
            partition.partition = entry.partition
            partition.fetchOffset = entry.offset
            partition.partitionMaxBytes = partitionMaxBytes
            if topics.last?.topic == entry.topic {
                topics[topics.count - 1].partitions.append(partition)
            } else {
                var topic = FetchRequest.FetchTopic()
                topic.topic = entry.topic
                topic.partitions = [partition]
                topics.append(topic)
            }
        }
        request.topics = topics
        return request
    }

    /// Requests covering whole logs, cuts by partition and request budgets, mid-batch offsets,
    /// an empty partition, OFFSET_OUT_OF_RANGE and an unknown topic.
    static let requests: [FetchRequest] = [
        fetch([("a", 0, 0), ("a", 1, 0), ("a", 2, 0), ("b", 0, 0)]),
        fetch([("a", 0, 0), ("a", 1, 0), ("b", 0, 0)], partitionMaxBytes: 100),
        fetch([("a", 0, 5), ("b", 0, 6), ("a", 1, 3)], maxBytes: 300),
        fetch([("a", 0, 9), ("a", 1, 999), ("nope", 0, 0), ("b", 0, 13)]),
        fetch([("a", 2, 0), ("b", 0, 13)]),
    ]

    /// The raw response frame to `request`.
    static func rawResponse(_ request: FetchRequest, version: Int16, on connection: TestConnection) async throws -> ByteBuffer {
        try await connection.send(KafkaFraming.encodeRequest(request, version: version, correlationId: 77, clientId: "zero-copy-tests"))
        return try #require(try await connection.receive())
    }

    @Test("Zero-copy responses are byte for byte the copying path's, v4 to v12, multi-partition, empty and failing partitions")
    func identicalToCopying() async throws {
        let zeroCopy = try await TestBroker.start()
        let copying = try await TestBroker.start(zeroCopyFetch: false)
        let zeroConnection = try await TestConnection(port: zeroCopy.port)
        let copyConnection = try await TestConnection(port: copying.port)
        try await Self.fill(zeroConnection)
        try await Self.fill(copyConnection)
        for version in Int16(4)...12 {
            for (index, request) in Self.requests.enumerated() {
                let spliced = try await Self.rawResponse(request, version: version, on: zeroConnection)
                let copied = try await Self.rawResponse(request, version: version, on: copyConnection)
                #expect(spliced == copied, "request \(index) at v\(version)")
                let (_, response) = try KafkaFraming.decodeResponse(spliced, as: FetchResponse.self, version: version)
                #expect(response.responses.count == request.topics.count)
            }
        }
        // Bytes out count the spliced records too: both brokers sent the same.
        let sent = { (broker: TestBroker) in
            broker.broker.metricsText().split(separator: "\n").first { $0.hasPrefix("samsa_network_bytes_out_total") }.map(String.init)
        }
        #expect(sent(zeroCopy) != nil && sent(zeroCopy) == sent(copying))
        // The comparison is not of empty answers: the whole-log fetch carries every record of a-0.
        let whole = try await Self.rawResponse(Self.requests[0], version: 12, on: zeroConnection)
        let (_, response) = try KafkaFraming.decodeResponse(whole, as: FetchResponse.self, version: 12)
        let values = try ProduceFetchTests.values(in: response.responses[0].partitions[0].records, from: 0)
        #expect(values == (0..<55).map { "value-\($0)" })
        #expect(response.responses[0].partitions[2].records?.readableBytes == 0)
        let failing = try await Self.rawResponse(Self.requests[3], version: 11, on: zeroConnection)
        let (_, errors) = try KafkaFraming.decodeResponse(failing, as: FetchResponse.self, version: 11)
        #expect(errors.responses[0].partitions[1].errorCode == ErrorCode.offsetOutOfRange.rawValue)
        #expect(errors.responses[1].partitions[0].errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
        try await zeroConnection.close()
        try await copyConnection.close()
        try await zeroCopy.stop()
        try await copying.stop()
    }

    @Test("Pipelined requests on one connection are answered in order, fetches among them")
    func pipelinedInOrder() async throws {
        let broker = try await TestBroker.start()
        let connection = try await TestConnection(port: broker.port)
        try await Self.fill(connection)
        for id in Int32(1)...12 {
            if id % 3 == 0 {
                try await connection.send(KafkaFraming.encodeRequest(MetadataRequest(), version: 9, correlationId: id, clientId: nil))
            } else {
                try await connection.send(KafkaFraming.encodeRequest(Self.requests[Int(id) % Self.requests.count], version: 12, correlationId: id, clientId: nil))
            }
        }
        for id in Int32(1)...12 {
            let frame = try #require(try await connection.receive())
            #expect(frame.getInteger(at: frame.readerIndex, as: Int32.self) == id)
        }
        try await connection.close()
        try await broker.stop()
    }

    @Test("Consumers get file ranges; followers (replica id >= 0) get copies, as a truncation may cut what they read")
    func followersGetCopies() async throws {
        let broker = try await TestBroker.start()
        let connection = try await TestConnection(port: broker.port)
        try await Self.fill(connection)
        var request = Self.requests[0]
        let consumer = await broker.broker.dispatcher.fetch(request, version: 12, zeroCopy: true)
        #expect(consumer.slices.compactMap { $0 }.count == 3)
        for slice in consumer.slices { slice?.close() }
        request.replicaId = 1
        let follower = await broker.broker.dispatcher.fetch(request, version: 12, zeroCopy: true)
        #expect(follower.slices.allSatisfy { $0 == nil })
        #expect(try ProduceFetchTests.values(in: follower.response.responses[0].partitions[0].records, from: 0) == (0..<55).map { "value-\($0)" })
        try await connection.close()
        try await broker.stop()
    }

    /// Descriptors of this process on files under `directory` that were unlinked meanwhile.
    static func unlinkedDescriptors(under directory: String) -> Int {
        FetchLimitsTests.descriptors(under: directory) { $0.hasSuffix("(deleted)") }
    }

    @Test("Deleting the topic while a 29 MB response is being sent: the bytes arrive whole, no descriptor stays open")
    func deletedWhileInFlight() async throws {
        let broker = try await TestBroker.start()
        let connection = try await TestConnection(port: broker.port)
        _ = try await ProduceFetchTests.createTopic("big", partitions: 1, on: connection)
        let value = ByteBuffer(repeating: 0x61, count: 1000)
        for start in stride(from: 0, to: 32 * 900, by: 900) {
            var builder = RecordBatchBuilder()
            for index in start..<start + 900 { builder.append(timestamp: Int64(index), key: nil, value: value) }
            let produced = try await ProduceFetchTests.produce([try builder.build()], to: "big", acks: 1, on: connection)
            #expect(produced.errorCode == 0)
        }
        let request = Self.fetch([("big", 0, 0)], partitionMaxBytes: 64 << 20)
        let expected = try await Self.rawResponse(request, version: 12, on: connection)
        #expect(expected.readableBytes > 25 << 20)

        // A reader that takes the first bytes, then stops reading while the topic goes.
        let reader = try await SlowReader(port: broker.port)
        try await reader.send(KafkaFraming.encodeRequest(request, version: 12, correlationId: 77, clientId: "slow"))
        let started = try await reader.readSome()
        #expect(started < expected.readableBytes + 4, "the response is still in flight")
        var delete = DeleteTopicsRequest()
        delete.topicNames = ["big"]
        let deleted = try await connection.request(delete, version: 4, expecting: DeleteTopicsResponse.self)
        #expect(deleted.responses.first?.errorCode == 0)
        #expect(!FileManager.default.fileExists(atPath: broker.directory + "/big-0"))
        let frame = try await reader.readAll()
        #expect(frame.readableBytes == expected.readableBytes + 4)
        #expect(frame.getSlice(at: frame.readerIndex + 4, length: frame.readableBytes - 4) == expected)
        // The slice closes when its write completes, just after the last byte left: wait for it.
        for _ in 0..<500 where Self.unlinkedDescriptors(under: broker.directory) > 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(Self.unlinkedDescriptors(under: broker.directory) == 0)
        try await reader.close()
        try await connection.close()
        try await broker.stop()
    }
}

/// A client connection that reads only when asked (autoRead off), to hold a response in flight.
final class SlowReader: Sendable {
    let channel: any Channel
    let group: MultiThreadedEventLoopGroup
    private let received: AsyncStream<Int>
    private let collector: Collector
    private let iterator: Box

    init(port: Int) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        received = stream
        iterator = Box(stream.makeAsyncIterator())
        let collector = Collector(continuation: continuation)
        self.collector = collector
        channel = try await ClientBootstrap(group: group)
            .channelOption(.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    func send(_ bytes: ByteBuffer) async throws { try await channel.writeAndFlush(bytes) }

    /// Reads once; returns the bytes received so far.
    func readSome() async throws -> Int {
        channel.read()
        return await iterator.next() ?? 0
    }

    /// Reads until a whole frame (size prefix and body) is in; returns it.
    func readAll() async throws -> ByteBuffer {
        try await channel.setOption(.autoRead, value: true).get()
        while true {
            let bytes = collector.bytes.withLock { $0 }
            if let size = bytes.getInteger(at: bytes.readerIndex, as: Int32.self), bytes.readableBytes >= Int(size) + 4 { return bytes }
            guard await iterator.next() != nil else { return bytes }
        }
    }

    func close() async throws {
        try? await channel.close()
        try await group.shutdownGracefully()
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let bytes = Mutex(ByteBuffer())
        let continuation: AsyncStream<Int>.Continuation
        init(continuation: AsyncStream<Int>.Continuation) { self.continuation = continuation }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var chunk = unwrapInboundIn(data)
            let total = bytes.withLock { buffer in
                buffer.writeBuffer(&chunk)
                return buffer.readableBytes
            }
            continuation.yield(total)
        }
        func channelInactive(context: ChannelHandlerContext) { continuation.finish() }
    }

    private final class Box: @unchecked Sendable {
        // @unchecked: one test task reads at a time.
        var iterator: AsyncStream<Int>.Iterator
        init(_ iterator: AsyncStream<Int>.Iterator) { self.iterator = iterator }
        func next() async -> Int? { await iterator.next() }
    }
}
