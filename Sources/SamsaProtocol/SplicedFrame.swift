public import NIOCore

/// A response frame whose record bytes travel apart from the encoded message (the broker's zero-copy
/// fetch sends them from the segment files): encoded bytes and spliced payloads, in the order they go
/// on the wire. The size prefix at the start counts both.
public struct SplicedFrame<Payload> {
    public enum Part {
        case bytes(ByteBuffer)
        case spliced(Payload, length: Int)
    }

    public private(set) var parts: [Part]
    /// Bytes of the whole frame, size prefix included.
    public let totalBytes: Int

    /// Bytes of the spliced payloads (the record bytes not in the encoded parts).
    public var splicedBytes: Int {
        parts.reduce(0) { sum, part in if case .spliced(_, let length) = part { sum + length } else { sum } }
    }
}

extension SplicedFrame: Sendable where Payload: Sendable {}
extension SplicedFrame.Part: Sendable where Payload: Sendable {}

/// Encodes each `records` field either in line or, for the fields given a payload, as the length
/// prefix alone, noting where the payload's bytes go. Fields are matched to `payloads` by encoding
/// order (topics, then their partitions, as the message's arrays list them).
public struct SplicingRecordsWriter<Payload>: KafkaRecordsWriter {
    private var payloads: IndexingIterator<[(Payload, length: Int)?]>
    /// Where each payload goes: the buffer's writer index just after its length prefix.
    fileprivate private(set) var cuts: [(position: Int, payload: Payload, length: Int)] = []
    fileprivate private(set) var fields = 0
    fileprivate let expected: Int

    public init(payloads: [(Payload, length: Int)?]) {
        self.payloads = payloads.makeIterator()
        self.expected = payloads.count
    }

    public mutating func write(_ records: ByteBuffer?, compact: Bool, into buffer: inout ByteBuffer) {
        fields += 1
        guard case .some(.some(let (payload, length))) = payloads.next() else {
            buffer.writeKafkaNullableBytes(records, compact: compact)
            return
        }
        precondition(records == nil || records?.readableBytes == 0, "a spliced records field must carry no bytes of its own")
        if compact {
            buffer.writeKafkaUnsignedVarint(UInt32(length + 1))
        } else {
            buffer.writeInteger(Int32(length))
        }
        cuts.append((buffer.writerIndex, payload, length))
    }
}

extension KafkaFraming {
    /// A whole response frame (size, header, body) with the records fields that `payloads` names
    /// (by encoding order; nil encodes that field in line) left out of the bytes, as spliced parts.
    public static func encodeResponse<Body: KafkaRecordsMessage, Payload>(
        _ body: Body, version: Int16, correlationId: Int32, splicing payloads: [(Payload, length: Int)?], allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> SplicedFrame<Payload> {
        let key = ApiKey(rawValue: Body.apiKey)!
        var writer = SplicingRecordsWriter(payloads: payloads)
        var buffer = allocator.buffer(capacity: 256)
        buffer.writeInteger(Int32(0))
        var header = ResponseHeader()
        header.correlationId = correlationId
        header.write(into: &buffer, version: responseHeaderVersion(apiKey: key, version: version))
        body.write(into: &buffer, version: version, records: &writer)
        precondition(writer.fields == writer.expected, "\(writer.expected) payloads for \(writer.fields) records fields")
        let spliced = writer.cuts.reduce(0) { $0 + $1.length }
        buffer.setInteger(Int32(buffer.readableBytes - sizeLength + spliced), at: buffer.readerIndex)
        var parts: [SplicedFrame<Payload>.Part] = []
        parts.reserveCapacity(2 * writer.cuts.count + 1)
        var start = buffer.readerIndex
        for cut in writer.cuts {
            if cut.position > start { parts.append(.bytes(buffer.getSlice(at: start, length: cut.position - start)!)) }
            parts.append(.spliced(cut.payload, length: cut.length))
            start = cut.position
        }
        if buffer.writerIndex > start { parts.append(.bytes(buffer.getSlice(at: start, length: buffer.writerIndex - start)!)) }
        return SplicedFrame(parts: parts, totalBytes: buffer.readableBytes + spliced)
    }
}
