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

    /// The whole frame as one buffer, when no part is spliced.
    public var unspliced: ByteBuffer? {
        guard parts.count == 1, case .bytes(let bytes) = parts[0] else { return nil }
        return bytes
    }

    /// Bytes of the spliced payloads (the record bytes not in the encoded parts).
    public var splicedBytes: Int {
        parts.reduce(0) { sum, part in if case .spliced(_, let length) = part { sum + length } else { sum } }
    }
}

extension SplicedFrame: Sendable where Payload: Sendable {}
extension SplicedFrame.Part: Sendable where Payload: Sendable {}

/// Why a spliced frame could not be encoded. Never a trap: the sizes come from whatever the caller
/// read, so they are checked like input.
public enum SplicedFrameError: Error, Hashable, Sendable {
    /// The frame would be `bytes` long, past what its 32-bit size prefix (`Int32.max`) can say.
    case tooLarge(bytes: Int)
    /// The payloads do not match the message's records fields: more `payloads` than `fields`, a
    /// payload for a field that carries bytes of its own, or a negative length.
    case payloadsDoNotMatch(payloads: Int, fields: Int)
}

/// Encodes each `records` field either in line or, for the fields given a payload, as the length
/// prefix alone, noting where the payload's bytes go. Fields are matched to `payloads` by encoding
/// order (topics, then their partitions, as the message's arrays list them); fields past the end of
/// `payloads` are encoded in line.
public struct SplicingRecordsWriter<Payload>: KafkaRecordsWriter {
    private var payloads: IndexingIterator<[(Payload, length: Int)?]>
    /// Where each payload goes: the buffer's writer index just after its length prefix.
    fileprivate private(set) var cuts: [(position: Int, payload: Payload, length: Int)] = []
    fileprivate private(set) var fields = 0
    fileprivate let expected: Int
    /// A payload the field could not take (bytes of its own, a negative length).
    fileprivate private(set) var mismatched = false
    /// A payload too long for a records field's length prefix.
    fileprivate private(set) var oversized = false

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
        if records?.readableBytes ?? 0 > 0 { mismatched = true }
        // A length the prefix cannot hold is written as 0 here: the frame is refused in the end.
        guard let prefix = Int32(exactly: length), prefix >= 0, prefix < .max else {
            if length < 0 { mismatched = true } else { oversized = true }
            buffer.writeKafkaNullableBytes(ByteBuffer(), compact: compact)
            return
        }
        if compact {
            buffer.writeKafkaUnsignedVarint(UInt32(prefix) + 1)
        } else {
            buffer.writeInteger(prefix)
        }
        cuts.append((buffer.writerIndex, payload, length))
    }
}

extension KafkaFraming {
    /// A whole response frame (size, header, body) with the records fields that `payloads` names
    /// (by encoding order; nil, or no payload left, encodes that field in line) left out of the
    /// bytes, as spliced parts.
    /// Throws rather than trap when the frame would not fit its 32-bit size prefix or the payloads
    /// do not match the fields.
    public static func encodeResponse<Body: KafkaRecordsMessage, Payload>(
        _ body: Body, version: Int16, correlationId: Int32, splicing payloads: [(Payload, length: Int)?], allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws(SplicedFrameError) -> SplicedFrame<Payload> {
        let key = ApiKey(rawValue: Body.apiKey)!
        var writer = SplicingRecordsWriter(payloads: payloads)
        var buffer = allocator.buffer(capacity: 256)
        buffer.writeInteger(Int32(0))
        var header = ResponseHeader()
        header.correlationId = correlationId
        header.write(into: &buffer, version: responseHeaderVersion(apiKey: key, version: version))
        body.write(into: &buffer, version: version, records: &writer)
        guard writer.fields >= writer.expected, !writer.mismatched else {
            throw .payloadsDoNotMatch(payloads: writer.expected, fields: writer.fields)
        }
        // Lengths are each below Int32.max here, so neither sum can overflow an Int.
        let spliced = writer.cuts.reduce(0) { $0 + $1.length }
        let total = buffer.readableBytes + spliced
        guard !writer.oversized, let size = Int32(exactly: total - sizeLength) else {
            throw .tooLarge(bytes: writer.oversized ? Int.max : total)
        }
        buffer.setInteger(size, at: buffer.readerIndex)
        var parts: [SplicedFrame<Payload>.Part] = []
        parts.reserveCapacity(2 * writer.cuts.count + 1)
        var start = buffer.readerIndex
        for cut in writer.cuts {
            if cut.position > start { parts.append(.bytes(buffer.getSlice(at: start, length: cut.position - start)!)) }
            parts.append(.spliced(cut.payload, length: cut.length))
            start = cut.position
        }
        if buffer.writerIndex > start { parts.append(.bytes(buffer.getSlice(at: start, length: buffer.writerIndex - start)!)) }
        return SplicedFrame(parts: parts, totalBytes: total)
    }
}
