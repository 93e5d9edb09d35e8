import Foundation

/// One topic as the data directory records it: its id (Kafka's text form, KIP-516), its partition
/// count and its config overrides under Kafka's topic config names (`flush.messages`,
/// `retention.ms`, ...). Names a reader does not know are kept as they are, so whoever rewrites the
/// registry (the embedded queue, a `samsa` command, the broker) keeps the others' settings.
public struct StoredTopic: Sendable, Hashable, Codable {
    /// Nil until one is given (a topic from before ids, on a cluster's broker until coordination's is adopted).
    public var id: String?
    public var partitions: Int32
    public var configs: [String: String]

    public init(id: String?, partitions: Int32, configs: [String: String] = [:]) {
        self.id = id
        self.partitions = partitions
        self.configs = configs
    }
}

/// The data directory's one registry of topics, `topics.json`, read and written by `Samsa`, every
/// `samsa` command and `samsa broker` alike: `{"format": 2, "topics": {name: StoredTopic}}`, written
/// atomically (temp file, fsync, rename, fsync of the directory).
///
/// Older directories are converted in place once (`TopicsConversion`): the embedded queue's first
/// `topics.json` (its own settings' names) and a broker's `topic-configs.json` + `topic-ids.json`.
public enum TopicsFile {
    public static let name = "topics.json"
    public static let format = 2

    private struct Document: Codable {
        var format: Int
        var topics: [String: StoredTopic]
    }

    /// What `directory/topics.json` holds: nil when there is none, `.legacy` for the embedded queue's
    /// first layout (to convert), or the topics.
    enum Contents {
        case topics([String: StoredTopic])
        case legacy([UInt8])
    }

    static func contents(_ directory: String, files: any FileSystem) throws(StorageError) -> Contents? {
        let path = "\(directory)/\(name)"
        guard files.fileExists(path) else { return nil }
        let bytes = try files.readFile(path)
        if let key = JSONDuplicateKeys.first(in: bytes) { throw StorageError(.corrupt, path: path, "the key '\(key)' is given twice") }
        // The first layout is a bare object of topics, so "format" there names a topic (an object), not a number.
        let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        guard let object else { throw StorageError(.corrupt, path: path, "not a JSON object") }
        guard object["format"] is NSNumber else { return .legacy(bytes) }
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: Data(bytes))
        } catch {
            throw StorageError(.corrupt, path: path, "cannot be read: \(error)")
        }
        guard document.format == format else {
            throw StorageError(.corrupt, path: path, "format \(document.format) is not one this Samsa reads (\(format))")
        }
        try check(document.topics, path: path)
        return .topics(document.topics)
    }

    /// The registry's topics; nil when the directory has none. Throws `.corrupt` for a file no Samsa
    /// could have written, and for one in an older layout: open the directory for writing once
    /// (any `Samsa.open`, `samsa broker`) to convert it.
    public static func read(_ directory: String, files: any FileSystem) throws(StorageError) -> [String: StoredTopic]? {
        switch try contents(directory, files: files) {
        case nil: return nil
        case .topics(let topics): return topics
        case .legacy:
            throw StorageError(
                .corrupt, path: "\(directory)/\(name)", "is in the embedded queue's first layout: open the directory for writing once to convert it")
        }
    }

    public static func write(_ topics: [String: StoredTopic], _ directory: String, files: any FileSystem) throws(StorageError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes: Data
        do {
            bytes = try encoder.encode(Document(format: format, topics: topics))
        } catch {
            throw StorageError(.invalidArgument, path: "\(directory)/\(name)", "cannot encode the topic registry: \(error)")
        }
        try files.writeFileAtomically("\(directory)/\(name)", Array(bytes))
    }

    /// The most partitions a topic may have in a registry.
    public static let maxPartitions: Int32 = 1_000_000

    /// Refuses what no Samsa writes: a bad name, a partition count outside 1...1,000,000, an id not
    /// in Kafka's form, a config name or value past Kafka's sizes. A hand-edited file fails here,
    /// clearly, instead of later.
    static func check(_ topics: [String: StoredTopic], path: String) throws(StorageError) {
        for (topic, stored) in topics {
            guard TopicPartition.isValidTopic(topic) else { throw StorageError(.corrupt, path: path, "invalid topic name '\(topic.prefix(64))'") }
            guard (1...maxPartitions).contains(stored.partitions) else {
                throw StorageError(.corrupt, path: path, "topic '\(topic)': partitions must be 1...\(maxPartitions), not \(stored.partitions)")
            }
            if let id = stored.id, !TopicId.isValid(id) {
                throw StorageError(.corrupt, path: path, "topic '\(topic)': '\(id.prefix(64))' is not a topic id (22 characters of URL-safe base64)")
            }
            for (key, value) in stored.configs where key.utf8.count > 255 || value.utf8.count > 32_767 {
                throw StorageError(.corrupt, path: path, "topic '\(topic)': config '\(key.prefix(64))' is longer than a config may be")
            }
        }
    }
}
