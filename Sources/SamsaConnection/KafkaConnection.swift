public import NIOCore
import NIOPosix
public import SamsaProtocol
import Synchronization

/// One TCP connection to a Kafka broker, used by the client and by a broker's link to another
/// broker. Requests may be sent from any task and are pipelined: each is written at once and its
/// response is matched by order and checked by correlation id (`ResponsePipeline`).
///
/// Bounded by construction: a response frame larger than `maxResponseBytes` closes the connection,
/// so does a request not answered within its timeout (a deadline on the event loop, cancelled when
/// the answer comes: no timer outlives its request), and so does a wrong correlation id. Every
/// request then waiting fails with a `ConnectionError`.
public final class KafkaConnection: Sendable {
    public let host: String
    public let port: Int
    let channel: any Channel
    private let clientId: String
    private let nextCorrelation = Atomic<Int32>(1)

    init(host: String, port: Int, channel: any Channel, clientId: String) {
        self.host = host
        self.port = port
        self.channel = channel
        self.clientId = clientId
    }

    /// Opens a connection; throws `ConnectionError(.connectFailed)` when the TCP connection cannot be
    /// made within `connectTimeout`.
    public static func connect(
        host: String, port: Int, group: any EventLoopGroup, clientId: String, connectTimeout: TimeAmount, maxResponseBytes: Int
    ) async throws(ConnectionError) -> KafkaConnection {
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try addHandlers(to: channel, maxResponseBytes: maxResponseBytes) }
                }
                .connect(host: host, port: port).get()
            return KafkaConnection(host: host, port: port, channel: channel, clientId: clientId)
        } catch {
            throw ConnectionError(.connectFailed, "\(host):\(port): \(error)")
        }
    }

    /// The handlers that frame and match responses (also used by tests on an `EmbeddedChannel`).
    static func addHandlers(to channel: any Channel, maxResponseBytes: Int) throws {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: maxResponseBytes, kind: "response")))
        try channel.pipeline.syncOperations.addHandler(ResponsePipeline())
    }

    /// Whether the connection is still usable.
    public var isActive: Bool { channel.isActive }

    /// The event loop the connection runs on.
    public var eventLoop: any EventLoop { channel.eventLoop }

    /// Sends `request` at `version`; the future completes with the decoded response (decoded on the
    /// event loop) or a `ConnectionError`.
    public func send<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, version: Int16, expecting: Response.Type, timeout: TimeAmount
    ) -> EventLoopFuture<Response> {
        let correlationId = nextCorrelation.wrappingAdd(1, ordering: .relaxed).oldValue
        let response = channel.eventLoop.makePromise(of: ByteBuffer.self)
        write(request, version: version, correlationId: correlationId, awaited: .init(correlationId: correlationId, timeout: timeout, promise: response))
            .whenFailure { response.fail($0) }
        return response.futureResult.flatMapThrowing { frame in
            do {
                return try KafkaFraming.decodeResponse(frame, as: Response.self, version: version).body
            } catch {
                throw ConnectionError(.undecodable, "\(Self.name(of: Request.self)) v\(version): \(error)")
            }
        }
    }

    /// The async form of `send`.
    public func request<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, version: Int16, expecting: Response.Type, timeout: TimeAmount
    ) async throws -> Response {
        try await send(request, version: version, expecting: expecting, timeout: timeout).get()
    }

    /// Sends a request that the broker does not answer (Produce with acks=0); the future completes once
    /// the bytes are written.
    public func sendWithoutResponse<Request: KafkaMessage>(_ request: Request, version: Int16) -> EventLoopFuture<Void> {
        let correlationId = nextCorrelation.wrappingAdd(1, ordering: .relaxed).oldValue
        return write(request, version: version, correlationId: correlationId, awaited: nil)
    }

    private func write<Request: KafkaMessage>(
        _ request: Request, version: Int16, correlationId: Int32, awaited: OutgoingRequest.Awaited?
    ) -> EventLoopFuture<Void> {
        let frame = KafkaFraming.encodeRequest(request, version: version, correlationId: correlationId, clientId: clientId, allocator: channel.allocator)
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(OutgoingRequest(frame: frame, awaited: awaited), promise: written)
        // A write refused by a closed channel never reaches `ResponsePipeline`.
        return written.futureResult.flatMapErrorThrowing { error in
            throw error as? ConnectionError ?? ConnectionError(.closed, "\(error)")
        }
    }

    /// Closes the connection; every request still waiting fails with `.closed`.
    @discardableResult
    public func close() -> EventLoopFuture<Void> {
        channel.close()
    }

    private static func name<Request: KafkaMessage>(of: Request.Type) -> String {
        ApiKey(rawValue: Request.apiKey).map { "\($0)" } ?? "api \(Request.apiKey)"
    }
}
