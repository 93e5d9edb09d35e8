import NIOCore
import SamsaProtocol

/// Splits a connection's bytes into Kafka response frames (a 4-byte big-endian size, then that many
/// bytes), passed on without the size. A size outside 0...limit is an error, which closes the connection.
struct ResponseFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    let maxFrameBytes: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return .needMoreData }
        guard size >= 0, Int(size) <= maxFrameBytes else {
            throw KafkaClientError.badResponse("response size \(size) is outside 0...\(maxFrameBytes)")
        }
        guard buffer.readableBytes >= KafkaFraming.sizeLength + Int(size) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: KafkaFraming.sizeLength)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(size))!))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        .needMoreData
    }
}
