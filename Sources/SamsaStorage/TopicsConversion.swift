import Foundation

/// Converts a data directory's older topic registries into `topics.json` (format 2), in place, once,
/// by whoever opens it for writing first (`Samsa.open`, `samsa broker`). Every step survives a crash:
///
/// - The embedded queue's first `topics.json` (its own setting names): its bytes are first kept as
///   `topics.v1.json`, then `topics.json` is replaced atomically. A crash before the replacement
///   leaves the old file, which the next open converts again.
/// - A broker's `topic-configs.json` (overrides) and `topic-ids.json` (ids), with the topics its
///   partition directories hold: `topics.json` is written atomically, then the old files are renamed
///   `<name>.migrated`. A crash between leaves both; `topics.json` then wins and the renames finish.
///
/// Nothing is deleted: the old files stay beside the new one under other names.
public enum TopicsConversion {
    public static let embeddedBackup = "topics.v1.json"
    public static let brokerConfigs = "topic-configs.json"
    public static let brokerIds = "topic-ids.json"
    public static let migratedSuffix = ".migrated"

    /// What a conversion did, for the log.
    public struct Outcome: Sendable, Equatable, CustomStringConvertible {
        public var from: String
        public var topics: Int
        public var description: String { "converted \(from) (\(topics) topic\(topics == 1 ? "" : "s")) into \(TopicsFile.name)" }
    }

    /// Whether `directory` holds a registry in an older layout (or the leftovers of a conversion).
    public static func isNeeded(_ directory: String, files: any FileSystem) -> Bool {
        if case .legacy = try? TopicsFile.contents(directory, files: files) { return true }
        return [brokerConfigs, brokerIds].contains { files.fileExists("\(directory)/\($0)") }
    }

    /// Converts what is there; nil when the directory needed nothing. `adoptingPartitions`: a
    /// directory with neither registry but partition directories gets one listing them (a broker's
    /// from before registries; the embedded queue refuses such a directory instead).
    public static func convert(_ directory: String, files: any FileSystem, adoptingPartitions: Bool = false) throws(StorageError) -> Outcome? {
        switch try TopicsFile.contents(directory, files: files) {
        case .topics:
            // Converted already; a crash may have left the broker's old files to rename.
            try retireBrokerFiles(directory, files: files)
            return nil
        case .legacy(let bytes):
            let topics = try embeddedTopics(bytes, path: "\(directory)/\(TopicsFile.name)")
            if !files.fileExists("\(directory)/\(embeddedBackup)") {
                try files.writeFileAtomically("\(directory)/\(embeddedBackup)", bytes)
            }
            try TopicsFile.write(topics, directory, files: files)
            return Outcome(from: "the embedded queue's first \(TopicsFile.name)", topics: topics.count)
        case nil:
            let hasBrokerFiles = [brokerConfigs, brokerIds].contains { files.fileExists("\(directory)/\($0)") }
            guard hasBrokerFiles || adoptingPartitions else { return nil }
            let topics = try brokerTopics(directory, files: files)
            guard hasBrokerFiles || !topics.isEmpty else { return nil }
            try TopicsFile.write(topics, directory, files: files)
            try retireBrokerFiles(directory, files: files)
            return Outcome(from: hasBrokerFiles ? "\(brokerConfigs) and \(brokerIds)" : "the partition directories", topics: topics.count)
        }
    }

    /// The topics as the registry holds them, or as converting the older layouts there would make
    /// them, without writing anything (a read-only open of a directory no writer converted yet); nil
    /// when the directory has no registry of either kind.
    public static func topics(_ directory: String, files: any FileSystem) throws(StorageError) -> [String: StoredTopic]? {
        switch try TopicsFile.contents(directory, files: files) {
        case .topics(let topics): return topics
        case .legacy(let bytes): return try embeddedTopics(bytes, path: "\(directory)/\(TopicsFile.name)")
        case nil:
            guard [brokerConfigs, brokerIds].contains(where: { files.fileExists("\(directory)/\($0)") }) else { return nil }
            return try brokerTopics(directory, files: files)
        }
    }

    private static func retireBrokerFiles(_ directory: String, files: any FileSystem) throws(StorageError) {
        var renamed = false
        for name in [brokerConfigs, brokerIds] where files.fileExists("\(directory)/\(name)") {
            try files.rename("\(directory)/\(name)", to: "\(directory)/\(name)\(migratedSuffix)")
            renamed = true
        }
        if renamed { try files.syncDirectory(directory) }
    }

    /// The embedded queue's first layout: `{name: {partitions, flush, compression, maxRecordBytes,
    /// segmentBytes, retentionBytes?, retentionMilliseconds?, writeAheadBytes?}}`.
    private struct EmbeddedTopic: Decodable {
        var partitions: Int
        var flush: String
        var compression: String
        var maxRecordBytes: Int
        var segmentBytes: Int
        var retentionBytes: Int64?
        var retentionMilliseconds: Int64?
        var writeAheadBytes: Int?
    }

    static func embeddedTopics(_ bytes: [UInt8], path: String) throws(StorageError) -> [String: StoredTopic] {
        if let key = JSONDuplicateKeys.first(in: bytes) { throw StorageError(.corrupt, path: path, "the key '\(key)' is given twice") }
        let old: [String: EmbeddedTopic]
        do {
            old = try JSONDecoder().decode([String: EmbeddedTopic].self, from: Data(bytes))
        } catch {
            throw StorageError(.corrupt, path: path, "cannot be read: \(error)")
        }
        var topics: [String: StoredTopic] = [:]
        for (name, topic) in old {
            guard let flush = FlushPolicy(topic.flush) else { throw StorageError(.corrupt, path: path, "topic '\(name)': unknown flush policy '\(topic.flush)'") }
            var configs = TopicConfigNames.flushConfigs(flush)
            configs[TopicConfigNames.compressionType] = topic.compression == "none" ? "producer" : topic.compression
            configs[TopicConfigNames.maxMessageBytes] = String(topic.maxRecordBytes)
            configs[TopicConfigNames.segmentBytes] = String(topic.segmentBytes)
            configs[TopicConfigNames.retentionBytes] = TopicConfigNames.limitText(topic.retentionBytes)
            configs[TopicConfigNames.retentionMs] = TopicConfigNames.limitText(topic.retentionMilliseconds)
            if let ahead = topic.writeAheadBytes, ahead > 0 { configs[TopicConfigNames.writeAheadBytes] = String(ahead) }
            topics[name] = StoredTopic(id: TopicId.random(), partitions: Int32(clamping: topic.partitions), configs: configs)
        }
        try TopicsFile.check(topics, path: path)
        return topics
    }

    /// A broker's: the topics its partition directories hold, with the overrides and ids it kept.
    private struct BrokerEntry: Decodable {
        struct Config: Decodable { var overrides: [String: String] }
        var partitions: Int32
        var config: Config
    }

    static func brokerTopics(_ directory: String, files: any FileSystem) throws(StorageError) -> [String: StoredTopic] {
        func decode<Value: Decodable>(_ name: String, as type: Value.Type) throws(StorageError) -> Value? {
            let path = "\(directory)/\(name)"
            guard files.fileExists(path) else { return nil }
            let bytes = try files.readFile(path)
            if let key = JSONDuplicateKeys.first(in: bytes) { throw StorageError(.corrupt, path: path, "the key '\(key)' is given twice") }
            do {
                return try JSONDecoder().decode(Value.self, from: Data(bytes))
            } catch let error as StorageError {
                throw error
            } catch {
                throw StorageError(.corrupt, path: path, "cannot be read: \(error)")
            }
        }
        let entries = try decode(brokerConfigs, as: [String: BrokerEntry].self) ?? [:]
        let ids = try decode(brokerIds, as: [String: String].self) ?? [:]
        // What the old broker wrote: a name or an id it could not have written is damage, not data to drop.
        for (file, names) in [(brokerConfigs, Array(entries.keys)), (brokerIds, Array(ids.keys))] {
            for name in names where !TopicPartition.isValidTopic(name) {
                throw StorageError(.corrupt, path: "\(directory)/\(file)", "invalid topic name '\(name.prefix(64))'")
            }
        }
        for (name, id) in ids where !TopicId.isValid(id) {
            throw StorageError(.corrupt, path: "\(directory)/\(brokerIds)", "topic '\(name)': '\(id.prefix(64))' is not a topic id")
        }
        var counts: [String: Int32] = [:]
        for partition in try LogManager.partitionDirectories(in: directory, files: files).partitions {
            // Counted wide: a directory numbered 2^31-1 is refused by the check below, not an overflow.
            counts[partition.topic] = Int32(clamping: max(Int(counts[partition.topic] ?? 0), Int(partition.partition) + 1))
        }
        // A topic without partition directories was being created when the broker stopped: the old
        // broker would have made it again on request, so it is left out, as it would have been.
        var topics: [String: StoredTopic] = [:]
        for (name, count) in counts {
            let entry = entries[name]
            topics[name] = StoredTopic(
                id: ids[name], partitions: max(count, entry?.partitions ?? 0),
                configs: entry?.config.overrides ?? [:])
        }
        try TopicsFile.check(topics, path: "\(directory)/\(brokerConfigs)")
        return topics
    }
}

/// Topic ids in Kafka's text form (`Uuid.toString`: URL-safe base64 of 16 bytes, unpadded).
public enum TopicId {
    /// A random version-4 id.
    /// A random version-4 id; like Kafka's `Uuid.randomUuid`, never one whose text starts with '-'
    /// (a command line would take it for an option).
    public static func random() -> String {
        while true {
            var bytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
            bytes[6] = (bytes[6] & 0x0F) | 0x40
            bytes[8] = (bytes[8] & 0x3F) | 0x80
            let id = text(bytes)
            if !id.hasPrefix("-") { return id }
        }
    }

    public static func text(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The 16 bytes of a text id; nil for anything else.
    public static func bytes(_ text: String) -> [UInt8]? {
        guard text.utf8.count == 22 else { return nil }
        let standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "=="
        guard let data = Data(base64Encoded: standard), data.count == 16 else { return nil }
        return Array(data)
    }

    public static func isValid(_ text: String) -> Bool { bytes(text) != nil }
}
