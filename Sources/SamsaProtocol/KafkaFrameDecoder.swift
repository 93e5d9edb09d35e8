public import NIOCore

/// Splits a connection's bytes into Kafka frames (a 4-byte big-endian size, then that many bytes:
/// requests on a broker, responses on a client), passed on without the size. A negative size or one
/// past the limit (Kafka's `socket.request.max.bytes`) is an error, which closes the connection.
///
/// Nothing is reserved for a frame's declared size: the buffer holds the bytes that have arrived,
/// so a peer that declares 100 MiB and sends 10 bytes costs 10 bytes.
public struct KafkaFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    public let maxFrameBytes: Int
    /// What the frames are ("request", "response"), for the error.
    public let kind: String

    public init(maxFrameBytes: Int, kind: String = "request") {
        self.maxFrameBytes = maxFrameBytes
        self.kind = kind
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.nextFrame(in: &buffer, maxFrameBytes: maxFrameBytes, kind: kind) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A frame cut off by the peer closing is dropped with the connection.
        .needMoreData
    }

    /// Takes the next whole frame (without its size) off the front of `buffer`, or nil (leaving
    /// `buffer` as it was) when its bytes have not all arrived.
    public static func nextFrame(in buffer: inout ByteBuffer, maxFrameBytes: Int, kind: String = "request") throws(FrameError) -> ByteBuffer? {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return nil }
        guard size >= 0, Int(size) <= maxFrameBytes else {
            throw FrameError(kind: kind, size: Int(size), limit: maxFrameBytes)
        }
        guard buffer.readableBytes >= KafkaFraming.sizeLength + Int(size) else { return nil }
        buffer.moveReaderIndex(forwardBy: KafkaFraming.sizeLength)
        return buffer.readSlice(length: Int(size))
    }
}

/// A frame size outside what the decoder accepts.
public struct FrameError: Error, CustomStringConvertible {
    public let kind: String
    public let size: Int
    public let limit: Int
    public var description: String { "\(kind) size \(size) is outside 0...\(limit)" }

    public init(kind: String, size: Int, limit: Int) {
        self.kind = kind
        self.size = size
        self.limit = limit
    }
}
