import NIOCore
import NIOPosix
import SamsaProtocol

/// A tiny TCP server standing in for a broker: it reads request frames and answers each as `reply`
/// says, so a test can make a peer misbehave in exactly one way.
final class FakeBroker: Sendable {
    enum Reply: Sendable {
        /// Writes these bytes (a whole frame, or not).
        case bytes(ByteBuffer)
        /// Writes these bytes, then closes the connection.
        case bytesThenClose(ByteBuffer)
        /// Never answers.
        case silence
    }

    let port: Int
    private let server: any Channel

    private init(server: any Channel) {
        self.server = server
        self.port = server.localAddress!.port!
    }

    /// Starts a server answering every request with `reply(correlationId)`.
    static func start(reply: @escaping @Sendable (_ correlationId: Int32) -> Reply) async throws -> FakeBroker {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: 1 << 20)))
                    try channel.pipeline.syncOperations.addHandler(Answerer(reply: reply))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FakeBroker(server: server)
    }

    func stop() async {
        try? await server.close()
    }

    /// A well-formed ApiVersions v0 answer (with a size prefix) carrying `correlationId`.
    static func answer(correlationId: Int32) -> ByteBuffer {
        KafkaFraming.encodeResponse(ApiVersionsResponse(), version: 0, correlationId: correlationId)
    }

    private final class Answerer: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let reply: @Sendable (Int32) -> Reply
        init(reply: @escaping @Sendable (Int32) -> Reply) { self.reply = reply }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            // Request header: api key i16, api version i16, correlation id i32.
            let correlationId = frame.getInteger(at: frame.readerIndex + 4, as: Int32.self) ?? -1
            switch reply(correlationId) {
            case .bytes(let bytes):
                context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
            case .bytesThenClose(let bytes):
                context.writeAndFlush(wrapOutboundOut(bytes)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            case .silence:
                break
            }
        }
    }
}
