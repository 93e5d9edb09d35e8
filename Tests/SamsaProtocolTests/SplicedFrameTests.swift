import NIOCore
import SamsaProtocol
import Testing
import SamsaTestSupport

/// `KafkaFraming.encodeResponse(_:version:correlationId:splicing:)`: the encoded parts with the
/// payloads put back are exactly the in-line encoding, in every FetchResponse version.
@Suite("Spliced frames", .offCooperativePool)
struct SplicedFrameTests {
    /// Three partitions over two topics: records to splice, records in line, null records, and a
    /// spliced empty range.
    static func response() -> (FetchResponse, inline: FetchResponse, payloads: [(ByteBuffer, length: Int)?]) {
        let spliced = [ByteBuffer(bytes: Array(repeating: 0xAB, count: 300)), ByteBuffer(bytes: Array(0..<200))]
        var withGaps = FetchResponse()
        var inline = FetchResponse()
        withGaps.throttleTimeMs = 3
        inline.throttleTimeMs = 3
        var payloads: [(ByteBuffer, length: Int)?] = []
        for (topicIndex, name) in ["first", "second"].enumerated() {
            var topic = FetchResponse.FetchableTopicResponse()
            topic.topic = name
            var inlineTopic = topic
            for index in 0..<3 {
                var partition = FetchResponse.PartitionData()
                partition.partitionIndex = Int32(index)
                partition.highWatermark = Int64(100 * index + topicIndex)
                var full = partition
                switch (topicIndex, index) {
                case (0, 0), (1, 2):
                    let bytes = spliced[topicIndex]
                    full.records = bytes
                    payloads.append((bytes, length: bytes.readableBytes))
                case (1, 0):
                    full.records = ByteBuffer()
                    payloads.append((ByteBuffer(), length: 0))
                case (0, 1):
                    partition.records = ByteBuffer(bytes: [1, 2, 3])
                    full.records = partition.records
                    payloads.append(nil)
                default:
                    payloads.append(nil)  // null records, encoded in line
                }
                topic.partitions.append(partition)
                inlineTopic.partitions.append(full)
            }
            withGaps.responses.append(topic)
            inline.responses.append(inlineTopic)
        }
        return (withGaps, inline, payloads)
    }

    @Test("Parts plus payloads equal the in-line encoding; the size prefix covers both", arguments: Int16(4)...16)
    func splicedEqualsInline(version: Int16) throws {
        let (response, inline, payloads) = Self.response()
        let expected = KafkaFraming.encodeResponse(inline, version: version, correlationId: 42)
        let frame = try KafkaFraming.encodeResponse(response, version: version, correlationId: 42, splicing: payloads)
        var joined = ByteBuffer()
        var spliced = 0
        for part in frame.parts {
            switch part {
            case .bytes(let bytes): joined.writeImmutableBuffer(bytes)
            case .spliced(let payload, let length):
                #expect(payload.readableBytes == length)
                joined.writeImmutableBuffer(payload)
                spliced += 1
            }
        }
        #expect(joined == expected)
        #expect(frame.totalBytes == expected.readableBytes)
        #expect(frame.splicedBytes == 500)
        #expect(spliced == 3)
        let (_, decoded) = try KafkaFraming.decodeResponse(joined.getSlice(at: 4, length: joined.readableBytes - 4)!, as: FetchResponse.self, version: version)
        // (From v13 topics go by id, so compare re-encodings rather than the names.)
        #expect(KafkaFraming.encodeResponse(decoded, version: version, correlationId: 42) == expected)
    }

    /// Two partitions whose records are spliced payloads (Ints standing for file ranges) of `lengths`.
    static func frame(lengths: [Int], records: [ByteBuffer?] = [nil, nil]) throws(SplicedFrameError) -> SplicedFrame<Int> {
        var response = FetchResponse()
        var topic = FetchResponse.FetchableTopicResponse()
        topic.topic = "t"
        topic.partitions = records.enumerated().map { index, bytes in
            var partition = FetchResponse.PartitionData()
            partition.partitionIndex = Int32(index)
            partition.records = bytes
            return partition
        }
        response.responses = [topic]
        return try KafkaFraming.encodeResponse(response, version: 12, correlationId: 1, splicing: lengths.map { (0, length: $0) })
    }

    @Test("Sizes past the 32-bit size prefix throw instead of trapping (a frame of 2 GiB, a payload of Int32.max)")
    func oversizedFramesThrow() throws {
        #expect(throws: SplicedFrameError.self) { try Self.frame(lengths: [1 << 30, 1 << 30]) }
        #expect(throws: SplicedFrameError.self) { try Self.frame(lengths: [Int(Int32.max), 0]) }
        #expect(throws: SplicedFrameError.self) { try Self.frame(lengths: [Int.max, Int.max]) }
        // Just under: encodes, and says so in its size prefix.
        let frame = try Self.frame(lengths: [1 << 30, (1 << 30) - 200])
        guard case .bytes(let head) = frame.parts.first else { Issue.record("no leading bytes"); return }
        #expect(frame.totalBytes < Int(Int32.max))
        #expect(head.getInteger(at: head.readerIndex, as: Int32.self).map(Int.init) == frame.totalBytes - 4)
    }

    @Test("Payloads that do not match the fields throw: one too many, one for a field with bytes, a negative length")
    func mismatchedPayloadsThrow() throws {
        #expect(throws: SplicedFrameError.self) { try Self.frame(lengths: [1, 2, 3]) }
        #expect(throws: SplicedFrameError.self) { try Self.frame(lengths: [1, 2], records: [ByteBuffer(bytes: [1]), nil]) }
        #expect(throws: SplicedFrameError.self) { try Self.frame(lengths: [-1, 2]) }
        // Fewer payloads than fields: the rest in line.
        let frame = try Self.frame(lengths: [5])
        #expect(frame.splicedBytes == 5)
    }
}
