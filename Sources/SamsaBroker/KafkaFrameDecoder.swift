import NIOCore
import SamsaProtocol

/// Splits a connection's bytes into Kafka request frames: a 4-byte big-endian size, then that many
/// bytes (header and body), passed on without the size. A negative size or one past the limit (Kafka's
/// `socket.request.max.bytes`) is an error, which closes the connection.
struct KafkaFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    let maxFrameBytes: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return .needMoreData }
        guard size >= 0, Int(size) <= maxFrameBytes else {
            throw FrameError(size: Int(size), limit: maxFrameBytes)
        }
        guard buffer.readableBytes >= KafkaFraming.sizeLength + Int(size) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: KafkaFraming.sizeLength)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(size))!))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A request cut off by the peer closing is dropped with the connection.
        .needMoreData
    }
}

/// A request size the broker refuses.
struct FrameError: Error, CustomStringConvertible {
    let size: Int
    let limit: Int
    var description: String { "request size \(size) is outside 0...\(limit)" }
}
