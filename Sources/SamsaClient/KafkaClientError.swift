public import SamsaProtocol

/// Why a client call failed.
public enum KafkaClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The broker answered with a Kafka error code (and sometimes a message).
    case broker(ErrorCode, String?)
    /// The connection closed (or could not be made) before the response arrived.
    case connectionFailed(String)
    /// The broker speaks no version of an API that this client speaks.
    case unsupportedApi(ApiKey)
    /// The broker's response did not decode, or did not answer the request that was sent.
    case badResponse(String)
    /// The topic or partition is not known to the cluster (after refreshing metadata).
    case unknownPartition(topic: String, partition: Int32)
    /// The producer was closed before the record was sent.
    case producerClosed
    /// The call did not complete within its deadline.
    case timedOut(String)

    public var description: String {
        switch self {
        case .broker(let code, let message): message.map { "\(code.name): \($0)" } ?? code.name
        case .connectionFailed(let reason): "connection failed: \(reason)"
        case .unsupportedApi(let key): "the broker supports no version of \(key) that this client speaks"
        case .badResponse(let reason): "bad response: \(reason)"
        case .unknownPartition(let topic, let partition): "unknown topic or partition \(topic)-\(partition)"
        case .producerClosed: "the producer is closed"
        case .timedOut(let what): "timed out: \(what)"
        }
    }

    /// An error worth retrying after refreshing metadata (Kafka's retriable errors that a single
    /// client can act on).
    public var isRetriable: Bool {
        switch self {
        case .connectionFailed, .timedOut: true
        case .broker(let code, _): Self.retriableCodes.contains(code)
        default: false
        }
    }

    static let retriableCodes: Set<ErrorCode> = [
        .unknownTopicOrPartition, .leaderNotAvailable, .notLeaderOrFollower, .requestTimedOut, .networkException,
        .notEnoughReplicas, .notEnoughReplicasAfterAppend, .kafkaStorageError, .notController,
    ]

    /// The errors after which the cached leader is likely stale.
    static let staleMetadataCodes: Set<ErrorCode> = [.unknownTopicOrPartition, .leaderNotAvailable, .notLeaderOrFollower, .notController]
}

extension ErrorCode {
    /// The code as a client error, or nil for none.
    func failure(_ message: String? = nil) -> KafkaClientError? {
        self == .none ? nil : .broker(self, message)
    }
}
