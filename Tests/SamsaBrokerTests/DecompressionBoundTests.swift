import NIOCore
import SamsaProtocol
import SamsaRecords
import Synchronization
import Testing
@testable import SamsaBroker

/// Decompression during produce validation is bounded broker-wide (issue 20, the zstd bomb): at most
/// `DecompressionPermits.count` partitions decompress at once, however many a request names.
@Suite("Decompression bound")
struct DecompressionBoundTests {
    /// How many run inside the permits now, and the most at once.
    final class Occupancy: Sendable {
        let counts = Mutex<(inside: Int, most: Int)>((0, 0))
        func enter() { counts.withLock { $0.inside += 1; $0.most = max($0.most, $0.inside) } }
        func leave() { counts.withLock { $0.inside -= 1 } }
    }

    @Test("Permits: never more holders than permits, every waiter served")
    func permitsBound() async throws {
        let permits = DecompressionPermits(count: 2)
        let occupancy = Occupancy()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    try await permits.withPermit {
                        occupancy.enter()
                        for _ in 0..<3 { await Task.yield() }
                        occupancy.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        let counts = occupancy.counts.withLock { $0 }
        #expect(counts.most >= 1 && counts.most <= 2)
        #expect(counts.inside == 0)
        #expect(permits.mostHeld <= 2)
        // All permits came back: two more holders get in at once.
        try await permits.withPermit { try await permits.withPermit {} }
    }

    @Test("Compressed batches are found from their headers alone")
    func detection() throws {
        let plain = try makeBatch(count: 3).buffer
        let compressed = try makeBatch(count: 3, compression: .zstd).buffer
        #expect(!DecompressionPermits.holdsCompressedBatch(plain))
        #expect(DecompressionPermits.holdsCompressedBatch(compressed))
        var both = plain
        both.writeImmutableBuffer(compressed)
        #expect(DecompressionPermits.holdsCompressedBatch(both))
        #expect(!DecompressionPermits.holdsCompressedBatch(ByteBuffer(bytes: [1, 2, 3])))
    }

    @Test("16 partitions of one request, each a 32 MiB-of-zeros zstd batch of a few KB: decompressed a permit at a time, all written")
    func bombRequest() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            #expect(try await ProduceFetchTests.createTopic("bombs", partitions: 16, on: connection).errorCode == 0)
            var builder = RecordBatchBuilder(compression: .zstd)
            builder.append(timestamp: 1, key: nil, value: [UInt8](repeating: 0, count: 32 << 20))
            let bomb = try builder.build()
            #expect(bomb.sizeInBytes < 64 << 10)
            var topic = ProduceRequest.TopicProduceData()
            topic.name = "bombs"
            topic.partitionData = (0..<16).map { index in
                var data = ProduceRequest.PartitionProduceData()
                data.index = Int32(index)
                data.records = bomb.buffer
                return data
            }
            var request = ProduceRequest()
            request.acks = 1
            request.timeoutMs = 30_000
            request.topicData = [topic]
            let response = try await connection.request(request, version: 9, expecting: ProduceResponse.self)
            #expect(response.responses.first?.partitionResponses.allSatisfy { $0.errorCode == 0 } == true)
            let permits = broker.broker.dispatcher.topics.context.decompression
            #expect(permits.mostHeld >= 1)
            #expect(permits.mostHeld <= permits.count)
            try await connection.close()
        }
    }
}
