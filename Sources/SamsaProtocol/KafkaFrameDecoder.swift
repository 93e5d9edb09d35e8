public import NIOCore

/// Splits a connection's bytes into Kafka frames (a 4-byte big-endian size, then that many bytes:
/// requests on a broker, responses on a client), passed on without the size. A negative size or one
/// past the limit (Kafka's `socket.request.max.bytes`) is an error, which closes the connection.
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
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return .needMoreData }
        guard size >= 0, Int(size) <= maxFrameBytes else {
            throw FrameError(kind: kind, size: Int(size), limit: maxFrameBytes)
        }
        guard buffer.readableBytes >= KafkaFraming.sizeLength + Int(size) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: KafkaFraming.sizeLength)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(size))!))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A frame cut off by the peer closing is dropped with the connection.
        .needMoreData
    }
}

/// A frame size outside what the decoder accepts.
public struct FrameError: Error, CustomStringConvertible {
    public let kind: String
    public let size: Int
    public let limit: Int
    public var description: String { "\(kind) size \(size) is outside 0...\(limit)" }
}
