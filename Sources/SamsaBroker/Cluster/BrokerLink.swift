import NIOCore
import SamsaConnection
import SamsaProtocol

/// A Kafka connection from this broker to another (a follower's fetcher to its leader): the shared
/// `KafkaConnection`, with the limits replication needs. Requests fail with a `ConnectionError` when
/// the peer closes the connection, does not answer in time, or answers out of turn.
struct BrokerLink: Sendable {
    /// The largest response accepted: a fetch response holds up to the fetch's byte limits, far below
    /// this; a frame declaring more closes the link instead of being buffered.
    static let maxResponseBytes = 1 << 30
    static let connectTimeout: TimeAmount = .seconds(5)

    private let connection: KafkaConnection

    static func connect(host: String, port: Int, group: any EventLoopGroup, clientId: String) async throws -> BrokerLink {
        BrokerLink(
            connection: try await KafkaConnection.connect(
                host: host, port: port, group: group, clientId: clientId, connectTimeout: connectTimeout, maxResponseBytes: maxResponseBytes))
    }

    func close() {
        connection.close()
    }

    /// Sends a request and decodes its response. No answer within `timeout` closes the link (a peer
    /// that stopped answering must not hold the caller forever).
    func request<Request: KafkaMessage, Response: KafkaMessage>(
        _ request: Request, version: Int16, expecting: Response.Type, timeout: Duration = .seconds(15)
    ) async throws -> Response {
        try await connection.request(request, version: version, expecting: expecting, timeout: TimeAmount(timeout))
    }
}
