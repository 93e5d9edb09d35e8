import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import SamsaStorage
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// What one Fetch may cost the broker (issue 20, items 1 and 5): the KIP-74 budget, duplicate
/// partitions read once, and the descriptors a zero-copy response holds, however the client reads.
@Suite("Fetch limits", .timeLimit(.minutes(3)))
struct FetchLimitsTests {
    /// A test broker with `configure` applied to its configuration.
    static func start(zeroCopy: Bool = true, _ configure: (inout BrokerConfiguration) -> Void = { _ in }) async throws -> TestBroker {
        let directory = temporaryPath("samsa-broker")
        var configuration = BrokerConfiguration(
            dataDirectory: directory, port: 0, logConfiguration: LogConfiguration(flushPolicy: .never), eventLoopThreads: 1, ioThreads: 2)
        configuration.zeroCopyFetch = zeroCopy
        configure(&configuration)
        return TestBroker(broker: try await Broker.start(configuration), directory: directory)
    }

    /// One batch holding one record of `bytes` bytes of value.
    static func batch(bytes: Int) throws -> RecordBatch {
        var builder = RecordBatchBuilder()
        builder.append(timestamp: 1_700_000_000_000, key: nil, value: ByteBuffer(repeating: 0x62, count: bytes))
        return try builder.build()
    }

    /// A topic of `partitions` partitions, each holding one batch of `bytes` bytes of value; returns
    /// the batch's size on the wire.
    static func fill(_ topic: String, partitions: Int32, bytes: Int, on connection: TestConnection) async throws -> Int {
        #expect(try await ProduceFetchTests.createTopic(topic, partitions: partitions, on: connection).errorCode == 0)
        let batch = try batch(bytes: bytes)
        for partition in 0..<partitions {
            #expect(try await ProduceFetchTests.produce([batch], to: topic, partition: partition, on: connection).errorCode == 0)
        }
        return batch.buffer.readableBytes
    }

    /// Record bytes per partition, in response order.
    static func recordSizes(_ response: FetchResponse) -> [Int] {
        response.responses.flatMap(\.partitions).map { $0.records?.readableBytes ?? 0 }
    }

    static func fetch(_ raw: ByteBuffer, version: Int16 = 12) throws -> FetchResponse {
        try KafkaFraming.decodeResponse(raw, as: FetchResponse.self, version: version).body
    }

    /// A metric's value in the broker's scrape.
    static func metric(_ name: String, of broker: TestBroker) -> Double? {
        broker.broker.metricsText().split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last!) }
    }

    @Test("The budget: the request's max_bytes under fetch.max.bytes and the 1 GiB ceiling, negatives as 0, the first batch whole")
    func budget() {
        var budget = FetchBudget(requestMaxBytes: .max, brokerMaxBytes: .max)
        #expect(budget.size == FetchBudget.ceiling)
        #expect(FetchBudget(requestMaxBytes: 52_428_800, brokerMaxBytes: 57_671_680).size == 52_428_800)
        #expect(FetchBudget(requestMaxBytes: -5, brokerMaxBytes: 57_671_680).size == 0)
        #expect(budget.limit(partitionMaxBytes: -1) == 0)
        #expect(budget.wholeFirstBatch && !budget.exhausted)
        budget.spend(0)
        #expect(budget.wholeFirstBatch, "an empty partition does not count")
        budget.spend(Int(Int32.max))
        #expect(budget.remaining == 0 && budget.exhausted)
        #expect(budget.limit(partitionMaxBytes: 1 << 20) == 0)
        #expect(FetchBudget(requestMaxBytes: 100, brokerMaxBytes: 1_000).bytesToWaitFor(minBytes: 1 << 20) == 100)
        #expect(FetchBudget(requestMaxBytes: 100, brokerMaxBytes: 1_000).bytesToWaitFor(minBytes: -1) == 0)
    }

    @Test("A partition named 1,000 times is read once, where it first appears, with its last entry's offset (as Kafka's fetchData map)",
          arguments: [true, false])
    func duplicatesReadOnce(zeroCopy: Bool) async throws {
        let broker = try await Self.start(zeroCopy: zeroCopy)
        let connection = try await TestConnection(port: broker.port)
        #expect(try await ProduceFetchTests.createTopic("dup", partitions: 1, on: connection).errorCode == 0)
        let first = try Self.batch(bytes: 10_000)
        let second = try Self.batch(bytes: 10_000)
        #expect(try await ProduceFetchTests.produce([first], to: "dup", on: connection).errorCode == 0)
        #expect(try await ProduceFetchTests.produce([second], to: "dup", on: connection).errorCode == 0)
        // dup-0 999 times from offset 0, an unknown topic, then dup-0 once more from offset 1.
        let entries = Array(repeating: ("dup", Int32(0), Int64(0)), count: 999) + [("nope", 0, 0), ("dup", 0, 1)]
        let request = ZeroCopyFetchTests.fetch(entries, maxBytes: 52_428_800)
        let raw = try await ZeroCopyFetchTests.rawResponse(request, version: 12, on: connection)
        let response = try Self.fetch(raw)
        #expect(response.responses.map(\.topic) == ["dup", "nope"])
        #expect(response.responses.map(\.partitions.count) == [1, 1])
        // From offset 1: the second batch alone (its base offset assigned by the log).
        #expect(Self.recordSizes(response) == [second.buffer.readableBytes, 0])
        #expect(response.responses[0].partitions[0].records?.getInteger(at: 0, as: Int64.self) == 1)
        #expect(response.responses[1].partitions[0].errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
        #expect(raw.readableBytes < 11_000)
        try await connection.close()
        try await broker.stop()
    }

    @Test("Only the first partition with records passes the limits; the others get what fits (KIP-74)", arguments: [true, false])
    func firstPartitionOnlyExceeds(zeroCopy: Bool) async throws {
        let broker = try await Self.start(zeroCopy: zeroCopy)
        let connection = try await TestConnection(port: broker.port)
        let size = try await Self.fill("big", partitions: 6, bytes: 300_000, on: connection)
        let all = (0..<Int32(6)).map { ("big", $0, Int64(0)) }
        // Batches over partition_max_bytes: the first comes whole, the others wait their turn.
        let small = try Self.fetch(try await ZeroCopyFetchTests.rawResponse(
            ZeroCopyFetchTests.fetch(all, partitionMaxBytes: 100_000, maxBytes: 52_428_800), version: 12, on: connection))
        #expect(Self.recordSizes(small) == [size, 0, 0, 0, 0, 0])
        // max_bytes 700,000: two batches fit, the third would pass it.
        let capped = try Self.fetch(try await ZeroCopyFetchTests.rawResponse(
            ZeroCopyFetchTests.fetch(all, partitionMaxBytes: 1 << 20, maxBytes: 700_000), version: 12, on: connection))
        #expect(Self.recordSizes(capped) == [size, size, 0, 0, 0, 0])
        // The first partition WITH records passes the limits, not the first named: big-0 from its end has none.
        let fromEnd = [("big", Int32(0), Int64(1))] + all.dropFirst()
        let skipping = try Self.fetch(try await ZeroCopyFetchTests.rawResponse(
            ZeroCopyFetchTests.fetch(fromEnd, partitionMaxBytes: 100_000, maxBytes: 100_000), version: 12, on: connection))
        #expect(Self.recordSizes(skipping) == [0, size, 0, 0, 0, 0])
        // max_bytes 0 still brings the first batch (progress), and offsets are checked everywhere.
        let outOfRange = [("big", Int32(0), Int64(0)), ("big", 1, 99)]
        let zero = try Self.fetch(try await ZeroCopyFetchTests.rawResponse(
            ZeroCopyFetchTests.fetch(outOfRange, partitionMaxBytes: 0, maxBytes: 0), version: 12, on: connection))
        #expect(Self.recordSizes(zero) == [size, 0])
        #expect(zero.responses[0].partitions[1].errorCode == ErrorCode.offsetOutOfRange.rawValue)
        try await connection.close()
        try await broker.stop()
    }

    @Test("fetch.max.bytes caps what a request asks for (the Java consumer's 50 MiB, 1 MiB per partition)", arguments: [true, false])
    func brokerCapsTheBudget(zeroCopy: Bool) async throws {
        let broker = try await Self.start(zeroCopy: zeroCopy) { $0.fetchMaxBytes = 650_000 }
        let connection = try await TestConnection(port: broker.port)
        let size = try await Self.fill("capped", partitions: 6, bytes: 300_000, on: connection)
        let request = ZeroCopyFetchTests.fetch((0..<Int32(6)).map { ("capped", $0, Int64(0)) }, partitionMaxBytes: 1_048_576, maxBytes: 52_428_800)
        let response = try Self.fetch(try await ZeroCopyFetchTests.rawResponse(request, version: 12, on: connection))
        #expect(Self.recordSizes(response) == [size, size, 0, 0, 0, 0])
        try await connection.close()
        try await broker.stop()
    }

    @Test("A zero-copy response sends at most zeroCopyFetchMaxFiles partitions from the files and copies the rest, byte for byte the copying path")
    func descriptorsPerResponse() async throws {
        let zeroCopy = try await Self.start()
        let copying = try await Self.start(zeroCopy: false)
        let zeroConnection = try await TestConnection(port: zeroCopy.port)
        let copyConnection = try await TestConnection(port: copying.port)
        let limit = zeroCopy.broker.configuration.zeroCopyFetchMaxFiles
        let partitions = Int32(limit + 8)
        let size = try await Self.fill("many", partitions: partitions, bytes: 1_000, on: zeroConnection)
        _ = try await Self.fill("many", partitions: partitions, bytes: 1_000, on: copyConnection)
        let request = ZeroCopyFetchTests.fetch((0..<partitions).map { ("many", $0, Int64(0)) }, maxBytes: 52_428_800)
        let (response, slices) = await zeroCopy.broker.dispatcher.fetch(request, version: 12, zeroCopy: true)
        #expect(slices.count(where: { $0 != nil }) == limit)
        #expect(zip(slices, Self.recordSizes(response)).allSatisfy { slice, copied in (slice?.length ?? copied) == size })
        for slice in slices { slice?.close() }
        let spliced = try await ZeroCopyFetchTests.rawResponse(request, version: 12, on: zeroConnection)
        let copied = try await ZeroCopyFetchTests.rawResponse(request, version: 12, on: copyConnection)
        #expect(spliced == copied)
        try await zeroConnection.close()
        try await copyConnection.close()
        try await zeroCopy.stop()
        try await copying.stop()
    }

    /// Descriptors of this process open on files under `directory` whose path (" (deleted)" once
    /// unlinked) passes `matching`.
    static func descriptors(under directory: String, matching: (String) -> Bool = { _ in true }) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return entries.count { entry in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)")).map {
                $0.hasPrefix(directory) && matching($0)
            } ?? false
        }
    }

    /// Descriptors of this process open on segment files under `directory`.
    static func segmentDescriptors(under directory: String) -> Int {
        descriptors(under: directory) { $0.contains(".log") }
    }

    @Test("A client that never reads holds at most zeroCopyFetchMaxFiles descriptors: its connection reads no request while a response waits")
    func neverReadingClient() async throws {
        let broker = try await Self.start()
        let connection = try await TestConnection(port: broker.port)
        let limit = broker.broker.configuration.zeroCopyFetchMaxFiles
        let partitions = Int32(limit + 8)
        // ~22 MB per response: far more than the socket buffers take.
        _ = try await Self.fill("wide", partitions: partitions, bytes: 900_000, on: connection)
        let cached = Self.segmentDescriptors(under: broker.directory)
        let request = KafkaFraming.encodeRequest(
            ZeroCopyFetchTests.fetch((0..<partitions).map { ("wide", $0, Int64(0)) }, partitionMaxBytes: 1 << 20, maxBytes: 52_428_800),
            version: 12, correlationId: 1, clientId: "never-reads")
        let reader = try await SlowReader(port: broker.port)
        try await reader.send(request)
        _ = try await reader.readSome()  // the response is being written: it holds its ranges
        #expect(Self.segmentDescriptors(under: broker.directory) - cached == limit)
        // More requests on the stalled connection are not read, so they hold nothing.
        let bytesIn = try #require(Self.metric("samsa_network_bytes_in_total", of: broker))
        for _ in 0..<3 { try await reader.send(request) }
        // A round trip on another connection, after which the broker took only that request.
        _ = try await connection.request(MetadataRequest(), version: 9, expecting: MetadataResponse.self, correlationId: 2)
        let taken = try #require(Self.metric("samsa_network_bytes_in_total", of: broker)) - bytesIn
        #expect(taken > 0 && taken < Double(request.readableBytes))
        #expect(Self.segmentDescriptors(under: broker.directory) - cached <= limit)
        // The client going away releases them (the pending write fails, the slices close).
        try await reader.close()
        for _ in 0..<500 where Self.segmentDescriptors(under: broker.directory) > cached {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(Self.segmentDescriptors(under: broker.directory) == cached)
        try await connection.close()
        try await broker.stop()
    }

    /// The copying path writes through the channel's async writer, which takes one response past
    /// the write buffer's high watermark before it suspends the connection's loop: at most two
    /// responses, each within the budget, wait per connection.
    @Test("Copying path, a client that never reads: its connection takes at most two requests while their responses wait")
    func neverReadingClientCopying() async throws {
        let broker = try await Self.start(zeroCopy: false)
        let connection = try await TestConnection(port: broker.port)
        _ = try await Self.fill("wide", partitions: 24, bytes: 900_000, on: connection)
        let request = KafkaFraming.encodeRequest(
            ZeroCopyFetchTests.fetch((0..<Int32(24)).map { ("wide", $0, Int64(0)) }, partitionMaxBytes: 1 << 20, maxBytes: 52_428_800),
            version: 12, correlationId: 1, clientId: "never-reads")
        let reader = try await SlowReader(port: broker.port)
        let bytesIn = try #require(Self.metric("samsa_network_bytes_in_total", of: broker))
        for _ in 0..<4 { try await reader.send(request) }
        _ = try await reader.readSome()
        _ = try await connection.request(MetadataRequest(), version: 9, expecting: MetadataResponse.self, correlationId: 2)
        let taken = try #require(Self.metric("samsa_network_bytes_in_total", of: broker)) - bytesIn
        #expect(taken >= Double(request.readableBytes) && taken < Double(3 * request.readableBytes))
        try await reader.close()
        try await connection.close()
        try await broker.stop()
    }
}
