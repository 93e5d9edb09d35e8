public import NIOCore
import NIOPosix
public import SamsaProtocol
import Synchronization

/// One TCP connection to a broker, with its negotiated API versions. Requests may be sent from any
/// task and are pipelined: each is written at once and its response is matched by order (and
/// checked by correlation id).
public final class BrokerConnection: Sendable {
    public let host: String
    public let port: Int
    /// The versions used on this connection.
    public let versions: ApiVersionTable
    let channel: any Channel
    private let clientId: String
    private let nextCorrelation = Atomic<Int32>(1)

    private init(host: String, port: Int, channel: any Channel, versions: ApiVersionTable, clientId: String) {
        self.host = host
        self.port = port
        self.channel = channel
        self.versions = versions
        self.clientId = clientId
    }

    /// Connects and negotiates versions with ApiVersions (v3, falling back to v0 as Kafka clients do
    /// when the broker answers UNSUPPORTED_VERSION).
    static func connect(
        host: String, port: Int, group: any EventLoopGroup, clientId: String, connectTimeout: TimeAmount, maxResponseBytes: Int
    ) async throws -> BrokerConnection {
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: maxResponseBytes, kind: "response")))
                        try channel.pipeline.syncOperations.addHandler(PipelineHandler())
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw KafkaClientError.connectionFailed("\(host):\(port): \(error)")
        }
        do {
            // A broker that accepts but never answers must not hold the caller forever.
            let deadline = channel.eventLoop.scheduleTask(in: connectTimeout) { channel.close(promise: nil) }
            defer { deadline.cancel() }
            let versions = try await negotiate(channel: channel, clientId: clientId)
            return BrokerConnection(host: host, port: port, channel: channel, versions: versions, clientId: clientId)
        } catch {
            try? await channel.close()
            throw error
        }
    }

    private static func negotiate(channel: any Channel, clientId: String) async throws -> ApiVersionTable {
        var request = ApiVersionsRequest()
        request.clientSoftwareName = "samsa-client"
        request.clientSoftwareVersion = "1.0"
        for version: Int16 in [3, 0] {
            let frame = try await roundTrip(
                channel, KafkaFraming.encodeRequest(request, version: version, correlationId: 0, clientId: clientId))
            // A broker that does not speak v3 answers in the v0 layout with error 35 and its list.
            if let response = try? KafkaFraming.decodeResponse(frame, as: ApiVersionsResponse.self, version: version).body,
                response.errorCode == ErrorCode.none.rawValue
            {
                return ApiVersionTable(broker: response.apiKeys)
            }
            if version == 0, let response = try? KafkaFraming.decodeResponse(frame, as: ApiVersionsResponse.self, version: 0).body {
                guard response.errorCode == ErrorCode.none.rawValue else {
                    throw KafkaClientError.broker(ErrorCode(rawValue: response.errorCode) ?? .unknown, "ApiVersions")
                }
                return ApiVersionTable(broker: response.apiKeys)
            }
        }
        throw KafkaClientError.badResponse("ApiVersions answer did not decode at v3 or v0")
    }

    private static func roundTrip(_ channel: any Channel, _ frame: ByteBuffer) async throws -> ByteBuffer {
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        channel.writeAndFlush(OutgoingRequest(frame: frame, response: promise), promise: nil)
        return try await promise.futureResult.get()
    }

    /// Whether the connection is still usable.
    public var isActive: Bool { channel.isActive }

    /// Sends `request` at the negotiated version and returns the response's future (decoded on the
    /// event loop). A response that takes longer than `timeout` closes the connection, as Kafka's
    /// clients do (the order of answers can no longer be trusted): this request and every other one
    /// waiting on the connection fail with `connectionFailed`, which callers retry on a new connection.
    func send<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, api: ApiKey, expecting: Response.Type, timeout: TimeAmount
    ) -> EventLoopFuture<(Response, version: Int16)> {
        let version: Int16
        do { version = try versions.version(api) } catch { return channel.eventLoop.makeFailedFuture(error) }
        let correlationId = nextCorrelation.wrappingAdd(1, ordering: .relaxed).oldValue
        let frame = KafkaFraming.encodeRequest(request, version: version, correlationId: correlationId, clientId: clientId, allocator: channel.allocator)
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let channel = channel
        let deadline = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        channel.writeAndFlush(OutgoingRequest(frame: frame, response: promise), promise: nil)
        return promise.futureResult.flatMapThrowing { frame in
            let decoded: (correlationId: Int32, body: Response)
            do {
                decoded = try KafkaFraming.decodeResponse(frame, as: Response.self, version: version)
            } catch {
                throw KafkaClientError.badResponse("\(api) v\(version): \(error)")
            }
            guard decoded.correlationId == correlationId else {
                throw KafkaClientError.badResponse("\(api) response has correlation id \(decoded.correlationId), expected \(correlationId)")
            }
            return (decoded.body, version)
        }
    }

    /// Sends a request that the broker does not answer (Produce with acks=0); the future completes once
    /// the bytes are written.
    func sendWithoutResponse<Request: KafkaMessage>(_ request: Request, api: ApiKey) -> EventLoopFuture<Void> {
        let version: Int16
        do { version = try versions.version(api) } catch { return channel.eventLoop.makeFailedFuture(error) }
        let correlationId = nextCorrelation.wrappingAdd(1, ordering: .relaxed).oldValue
        let frame = KafkaFraming.encodeRequest(request, version: version, correlationId: correlationId, clientId: clientId, allocator: channel.allocator)
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(OutgoingRequest(frame: frame, response: nil), promise: written)
        return written.futureResult.flatMapErrorThrowing { error in
            throw error as? KafkaClientError ?? .connectionFailed("\(error)")
        }
    }

    /// The async form of `send`.
    public func request<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, api: ApiKey, expecting: Response.Type, timeout: TimeAmount
    ) async throws -> Response {
        try await send(request, api: api, expecting: expecting, timeout: timeout).get().0
    }

    func close() async {
        try? await channel.close()
    }
}
