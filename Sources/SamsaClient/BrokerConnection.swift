public import NIOCore
import SamsaConnection
public import SamsaProtocol

/// One connection to a broker (the shared `KafkaConnection`) with the API versions negotiated on it.
/// Requests are pipelined; a response that takes longer than its timeout closes the connection, as
/// Kafka's clients do (the order of answers can no longer be trusted): that request and every other one
/// waiting on the connection fail with `connectionFailed`, which callers retry on a new connection.
public final class BrokerConnection: Sendable {
    public var host: String { connection.host }
    public var port: Int { connection.port }
    /// The versions used on this connection.
    public let versions: ApiVersionTable
    let connection: KafkaConnection

    private init(connection: KafkaConnection, versions: ApiVersionTable) {
        self.connection = connection
        self.versions = versions
    }

    /// Connects and negotiates versions with ApiVersions (v3, falling back to v0 as Kafka clients do
    /// when the broker answers UNSUPPORTED_VERSION). A broker that accepts but never answers is cut
    /// after `connectTimeout`.
    static func connect(
        host: String, port: Int, group: any EventLoopGroup, clientId: String, connectTimeout: TimeAmount, maxResponseBytes: Int
    ) async throws -> BrokerConnection {
        let connection: KafkaConnection
        do {
            connection = try await KafkaConnection.connect(
                host: host, port: port, group: group, clientId: clientId, connectTimeout: connectTimeout, maxResponseBytes: maxResponseBytes)
        } catch {
            throw KafkaClientError(error)
        }
        do {
            let versions = try await negotiate(connection, timeout: connectTimeout)
            return BrokerConnection(connection: connection, versions: versions)
        } catch {
            try? await connection.close().get()
            throw KafkaClientError(any: error)
        }
    }

    private static func negotiate(_ connection: KafkaConnection, timeout: TimeAmount) async throws -> ApiVersionTable {
        var request = ApiVersionsRequest()
        request.clientSoftwareName = "samsa-client"
        request.clientSoftwareVersion = "1.0"
        // A broker that does not speak v3 answers in the v0 layout with error 35: ask again at v0.
        if let response = try await answer(connection, request, version: 3, timeout: timeout), response.errorCode == ErrorCode.none.rawValue {
            return ApiVersionTable(broker: response.apiKeys)
        }
        guard let response = try await answer(connection, request, version: 0, timeout: timeout) else {
            throw KafkaClientError.badResponse("ApiVersions answer did not decode at v3 or v0")
        }
        guard response.errorCode == ErrorCode.none.rawValue else {
            throw KafkaClientError.broker(ErrorCode(rawValue: response.errorCode) ?? .unknown, "ApiVersions")
        }
        return ApiVersionTable(broker: response.apiKeys)
    }

    /// The ApiVersions answer at `version`, or nil when it does not decode at that version.
    private static func answer(
        _ connection: KafkaConnection, _ request: ApiVersionsRequest, version: Int16, timeout: TimeAmount
    ) async throws -> ApiVersionsResponse? {
        do {
            return try await connection.request(request, version: version, expecting: ApiVersionsResponse.self, timeout: timeout)
        } catch let error as ConnectionError where error.code == .undecodable {
            return nil
        }
    }

    /// Whether the connection is still usable.
    public var isActive: Bool { connection.isActive }

    /// Sends `request` at the negotiated version and returns the response's future (decoded on the
    /// event loop).
    func send<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, api: ApiKey, expecting: Response.Type, timeout: TimeAmount
    ) -> EventLoopFuture<(Response, version: Int16)> {
        let version: Int16
        do { version = try versions.version(api) } catch { return connection.eventLoop.makeFailedFuture(error) }
        return connection.send(request, version: version, expecting: expecting, timeout: timeout)
            .map { ($0, version) }
            .flatMapErrorThrowing { throw KafkaClientError(any: $0) }
    }

    /// Sends a request that the broker does not answer (Produce with acks=0); the future completes once
    /// the bytes are written.
    func sendWithoutResponse<Request: KafkaMessage>(_ request: Request, api: ApiKey) -> EventLoopFuture<Void> {
        let version: Int16
        do { version = try versions.version(api) } catch { return connection.eventLoop.makeFailedFuture(error) }
        return connection.sendWithoutResponse(request, version: version).flatMapErrorThrowing { throw KafkaClientError(any: $0) }
    }

    /// The async form of `send`.
    public func request<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, api: ApiKey, expecting: Response.Type, timeout: TimeAmount
    ) async throws -> Response {
        try await send(request, api: api, expecting: expecting, timeout: timeout).get().0
    }

    func close() async {
        try? await connection.close().get()
    }
}

extension KafkaClientError {
    /// A connection's failure as the client reports it: the connection is gone (retriable) or the
    /// broker's answer was wrong.
    init(_ error: ConnectionError) {
        switch error.code {
        case .connectFailed, .closed, .timedOut: self = .connectionFailed("\(error)")
        default: self = .badResponse("\(error)")
        }
    }

    /// Any error of a request as a client error.
    init(any error: any Error) {
        if let error = error as? KafkaClientError {
            self = error
        } else if let error = error as? ConnectionError {
            self.init(error)
        } else {
            self = .connectionFailed("\(error)")
        }
    }
}
