import NIOCore
import NIOPosix

/// One TCP connection to a ZooKeeper server: length-prefixed frames in both directions. The session
/// above it owns the protocol; this only moves frames and reports the connection's end.
final class ZooKeeperConnection: Sendable {
    let channel: any Channel
    let server: String

    private init(channel: any Channel, server: String) {
        self.channel = channel
        self.server = server
    }

    /// Connects to `server` ("host:port"); `onFrame` gets every frame, `onClose` the end.
    static func connect(
        to server: String, timeout: Duration, onFrame: @escaping @Sendable (ByteBuffer) -> Void, onClose: @escaping @Sendable () -> Void
    ) async throws -> ZooKeeperConnection {
        guard let colon = server.lastIndex(of: ":"), let port = Int(server[server.index(after: colon)...]) else {
            throw CoordinationError(.badArguments, "a ZooKeeper server is host:port, not '\(server)'")
        }
        let host = String(server[..<colon])
        let milliseconds = timeout.milliseconds
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.milliseconds(max(1, milliseconds)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(FrameHandler(onFrame: onFrame, onClose: onClose))
                }
            }
            .connect(host: host, port: port).get()
        return ZooKeeperConnection(channel: channel, server: server)
    }

    /// Sends one frame (the length prefix is added here).
    func send(_ payload: ByteBuffer) {
        var frame = channel.allocator.buffer(capacity: payload.readableBytes + 4)
        frame.writeInteger(Int32(payload.readableBytes))
        frame.writeImmutableBuffer(payload)
        channel.writeAndFlush(frame, promise: nil)
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// Splits the byte stream into frames: a big-endian Int32 length, then that many bytes.
private struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    /// ZooKeeper's default `jute.maxbuffer` is 1 MiB of data; allow its replies some room.
    static let maximumFrame = 16 << 20

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return .needMoreData }
        guard length >= 0, Int(length) <= Self.maximumFrame else {
            throw CoordinationError(.marshallingError, "a ZooKeeper frame claims \(length) bytes")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(NIOAny(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

private final class FrameHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let onFrame: @Sendable (ByteBuffer) -> Void
    let onClose: @Sendable () -> Void

    init(onFrame: @escaping @Sendable (ByteBuffer) -> Void, onClose: @escaping @Sendable () -> Void) {
        self.onFrame = onFrame
        self.onClose = onClose
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        onFrame(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        onClose()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
