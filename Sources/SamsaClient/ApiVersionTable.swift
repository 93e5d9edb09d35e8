public import SamsaProtocol

/// The version of each API used on one connection: the highest that both this client and the broker
/// speak (from the broker's ApiVersions answer).
public struct ApiVersionTable: Sendable, Hashable {
    /// The versions this client can speak. Produce and Fetch stop before topic ids (13), Metadata at 12,
    /// DeleteTopics before topic-id deletion (6); the minima are the first versions with record batches v2.
    public static let client: [ApiKey: ClosedRange<Int16>] = [
        .produce: 3...12,
        .fetch: 4...12,
        .listOffsets: 1...7,
        .metadata: 1...12,
        .apiVersions: 0...3,
        .createTopics: 2...5,
        .deleteTopics: 1...5,
        // The admin API (issue 19) and the group calls its tools make.
        .describeCluster: 0...2,
        .describeConfigs: 1...4,
        .alterConfigs: 0...2,
        .incrementalAlterConfigs: 0...1,
        .createPartitions: 0...3,
        .deleteRecords: 0...2,
        .electLeaders: 0...2,
        .describeLogDirs: 1...4,
        .describeProducers: 0...0,
        .alterPartitionReassignments: 0...0,
        .listPartitionReassignments: 0...0,
        .findCoordinator: 0...4,
        .listGroups: 0...4,
        .describeGroups: 0...5,
        .offsetFetch: 1...8,
        .offsetCommit: 2...8,
        .deleteGroups: 0...2,
        .offsetDelete: 0...0,
    ]

    private let chosen: [ApiKey: Int16]
    /// What the broker advertised, by API.
    public let broker: [ApiKey: ClosedRange<Int16>]

    public init(broker advertised: [ApiVersionsResponse.ApiVersion]) {
        var broker: [ApiKey: ClosedRange<Int16>] = [:]
        for entry in advertised {
            if let key = ApiKey(rawValue: entry.apiKey), entry.minVersion <= entry.maxVersion {
                broker[key] = entry.minVersion...entry.maxVersion
            }
        }
        var chosen: [ApiKey: Int16] = [:]
        for (key, ours) in Self.client {
            if let theirs = broker[key], ours.overlaps(theirs) { chosen[key] = min(ours.upperBound, theirs.upperBound) }
        }
        self.broker = broker
        self.chosen = chosen
    }

    /// The version to send `key` at, or `unsupportedApi`.
    public func version(_ key: ApiKey) throws(KafkaClientError) -> Int16 {
        guard let version = chosen[key] else { throw .unsupportedApi(key) }
        return version
    }
}
