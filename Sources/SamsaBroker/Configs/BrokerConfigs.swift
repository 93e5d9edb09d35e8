import SamsaStorage
import Synchronization

/// The broker-level values of the topic configs and where each comes from, as Kafka's
/// `DynamicBrokerConfig` layers them: this broker's dynamic configs, then the cluster-wide dynamic
/// default, then the broker's own configuration (file and flags), then Kafka's default. A topic's own
/// override comes before all of them. The one owner of the dynamic layers: `ConfigStore`s replace
/// them (from the data directory, or from coordination's watches), and `TopicTable` reconfigures its
/// logs from `logConfiguration`.
final class BrokerConfigs: Sendable {
    /// Whose dynamic configs: one broker's (Kafka's resource name "<id>") or every broker's ("").
    enum Entity: Hashable, Sendable, CustomStringConvertible {
        case broker(BrokerID)
        case clusterDefault

        /// The name Kafka stores it under (`/config/brokers/<default>` for the default).
        var storedName: String {
            switch self {
            case .broker(let id): "\(id.rawValue)"
            case .clusterDefault: "<default>"
            }
        }

        var description: String {
            switch self {
            case .broker(let id): "broker \(id.rawValue)"
            case .clusterDefault: "the cluster default"
            }
        }
    }

    /// A config's value and source, with every layer that sets it (DescribeConfigs' synonyms), first wins.
    struct Resolved: Sendable, Equatable {
        struct Layer: Sendable, Equatable {
            var name: String
            var value: String
            var source: ConfigSource
        }

        var value: String
        var source: ConfigSource
        var layers: [Layer]
    }

    let brokerId: BrokerID
    /// The broker's own log settings (its file and flags).
    let staticLog: LogConfiguration
    /// Values of the broker's own configuration, by topic config name.
    let staticValues: [String: String]
    /// Dynamic values by broker config name (`log.retention.ms`, ...), as stored.
    private let dynamic: Mutex<[Entity: [String: String]]>

    init(configuration: BrokerConfiguration) {
        brokerId = BrokerID(configuration.brokerId)
        staticLog = configuration.logConfiguration
        staticValues = Self.values(
            of: configuration.logConfiguration, maxMessageBytes: configuration.maxMessageBytes, compressionType: configuration.compressionType)
        dynamic = Mutex([:])
    }

    /// The stored dynamic configs of `entity` (broker config names).
    func dynamicValues(_ entity: Entity) -> [String: String] { dynamic.withLock { $0[entity] ?? [:] } }

    /// Replaces `entity`'s dynamic configs; true if they changed (the caller then reconfigures the logs).
    @discardableResult
    func replace(_ entity: Entity, with values: [String: String]) -> Bool {
        dynamic.withLock { table in
            guard (table[entity] ?? [:]) != values else { return false }
            table[entity] = values.isEmpty ? nil : values
            return true
        }
    }

    /// `key`'s value for a topic with `overrides` (nil: the broker-level value), and its layers.
    func resolve(_ key: ConfigKey, topicOverrides overrides: [String: String]? = nil) -> Resolved {
        let (own, clusterDefault) = dynamic.withLock { ($0[.broker(brokerId)] ?? [:], $0[.clusterDefault] ?? [:]) }
        var layers: [Resolved.Layer] = []
        if let value = overrides?[key.name] { layers.append(.init(name: key.name, value: value, source: .topic)) }
        if let value = own[key.brokerName] { layers.append(.init(name: key.brokerName, value: value, source: .dynamicBroker)) }
        if let value = clusterDefault[key.brokerName] { layers.append(.init(name: key.brokerName, value: value, source: .dynamicDefaultBroker)) }
        if let value = staticValues[key.name], value != key.kafkaDefault {
            layers.append(.init(name: key.brokerName, value: value, source: .staticBroker))
        }
        layers.append(.init(name: key.brokerName, value: key.kafkaDefault, source: .kafkaDefault))
        return Resolved(value: layers[0].value, source: layers[0].source, layers: layers)
    }

    /// The broker-level values (dynamic layers over the static ones) as topic overrides.
    private var brokerLevel: TopicConfig {
        let (own, clusterDefault) = dynamic.withLock { ($0[.broker(brokerId)] ?? [:], $0[.clusterDefault] ?? [:]) }
        var overrides: [String: String] = [:]
        for key in ConfigKeys.all {
            if let value = own[key.brokerName] ?? clusterDefault[key.brokerName] { overrides[key.name] = value }
        }
        return TopicConfig(overrides: overrides)
    }

    /// The log settings every topic starts from: the static ones with the dynamic broker configs applied.
    var logConfiguration: LogConfiguration {
        var configuration = brokerLevel.logConfiguration(base: staticLog)
        // Every broker partition keeps a high watermark (a single broker's follows its log end).
        configuration.cleansBelowHighWatermark = true
        return configuration
    }

    /// A topic's largest batch (`max.message.bytes`, else the broker's `message.max.bytes`).
    func maxMessageBytes(_ topic: TopicConfig) -> Int { Int(clamping: number("max.message.bytes", topic) ?? 1_048_588) }

    /// A topic's `min.insync.replicas`, else the broker's.
    func minInsyncReplicas(_ topic: TopicConfig) -> Int { Int(clamping: number("min.insync.replicas", topic) ?? 1) }

    /// The codec a topic's batches are stored in (`compression.type`, else the broker's).
    func compressionType(_ topic: TopicConfig) -> BrokerCompressionType {
        value("compression.type", topic).flatMap(BrokerCompressionType.init(configValue:)) ?? .kafkaDefault
    }

    private func number(_ name: String, _ topic: TopicConfig) -> Int64? { value(name, topic).flatMap { Int64($0) } }

    /// `resolve(...).value` without building the layers: produce requests read it per partition.
    private func value(_ name: String, _ topic: TopicConfig) -> String? {
        if let value = topic.overrides[name] { return value }
        guard let key = ConfigKeys.byName[name] else { return nil }
        let dynamicValue = dynamic.withLock { $0[.broker(brokerId)]?[key.brokerName] ?? $0[.clusterDefault]?[key.brokerName] }
        return dynamicValue ?? staticValues[name] ?? key.kafkaDefault
    }

    /// Kafka's topic config values for log settings, a batch limit and the stored codec.
    static func values(of log: LogConfiguration, maxMessageBytes: Int, compressionType: BrokerCompressionType = .kafkaDefault) -> [String: String] {
        let (flushMessages, flushMilliseconds) = TopicConfig.flushSettings(log.flushPolicy)
        return [
            "retention.ms": "\(log.retentionMilliseconds ?? -1)",
            "retention.bytes": "\(log.retentionBytes ?? -1)",
            "segment.bytes": "\(log.segmentBytes)",
            "segment.ms": "\(log.segmentMilliseconds ?? 604_800_000)",
            "max.message.bytes": "\(maxMessageBytes)",
            "flush.messages": "\(flushMessages)",
            "flush.ms": "\(flushMilliseconds)",
            "cleanup.policy": log.cleanupPolicy.rawValue,
            "delete.retention.ms": "\(log.deleteRetentionMilliseconds)",
            "min.cleanable.dirty.ratio": "\(log.minCleanableDirtyRatio)",
            "min.compaction.lag.ms": "\(log.minCompactionLagMilliseconds)",
            "max.compaction.lag.ms": "\(log.maxCompactionLagMilliseconds)",
            "compression.type": compressionType.configValue,
        ]
    }
}
