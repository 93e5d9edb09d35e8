import SamsaProtocol

/// The APIs and versions this broker serves, as ApiVersions advertises them. Minimum versions are as
/// low as the codecs allow, because librdkafka up to 2.11 (kcat on Debian) checks single versions
/// (Produce 3, Fetch 4, ListOffsets 1; Produce 2 with Fetch 2 for MsgVer1; and lz4 only if Produce 0 is
/// in range, else it silently sends lz4 batches uncompressed) and turns features off when they fall
/// outside. Produce and Fetch below 3 and 4 are old message formats: such requests get
/// UNSUPPORTED_FOR_MESSAGE_FORMAT.
enum SupportedApis {
    static let versions: [ApiKey: ClosedRange<Int16>] = [
        .produce: 0...9,
        .fetch: 2...16,
        .listOffsets: 1...7,
        .metadata: 0...12,
        .apiVersions: 0...3,
        .createTopics: 0...7,
        .findCoordinator: 0...4,
        .joinGroup: 0...7,
        .syncGroup: 0...5,
        .heartbeat: 0...4,
        .leaveGroup: 0...4,
        .offsetCommit: 1...8,
        .offsetFetch: 1...8,
        .listGroups: 0...4,
        .describeGroups: 0...5,
        .initProducerId: 0...4,
        .deleteTopics: 0...6,
        .describeConfigs: 0...4,
        .offsetForLeaderEpoch: 0...4,
        .describeCluster: 0...2,
        .alterConfigs: 0...2,
        .incrementalAlterConfigs: 0...1,
        .deleteGroups: 0...2,
        .offsetDelete: 0...0,
        .createPartitions: 0...3,
        .electLeaders: 0...2,
        .deleteRecords: 0...2,
        .describeLogDirs: 1...4,
        .describeProducers: 0...0,
        .alterPartitionReassignments: 0...1,
        .listPartitionReassignments: 0...0,
    ]

    /// The ApiVersions entries, by API key.
    static var advertised: [ApiVersionsResponse.ApiVersion] {
        versions.sorted { $0.key.rawValue < $1.key.rawValue }.map { key, range in
            var entry = ApiVersionsResponse.ApiVersion()
            entry.apiKey = key.rawValue
            entry.minVersion = range.lowerBound
            entry.maxVersion = range.upperBound
            return entry
        }
    }
}
