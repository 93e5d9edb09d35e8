import Foundation
import SamsaStorage

/// The topics' own settings, durable in `<data>/topic-configs.json` (the data directory otherwise stores
/// only partition logs): per topic its partition count and its config overrides. Read before the logs
/// are opened, so each partition log opens with its topic's settings. Written atomically (temp file,
/// fsync, rename); a missing file means no topic has overrides.
enum TopicConfigFile {
    struct Entry: Codable, Sendable, Hashable {
        var partitions: Int32
        var config: TopicConfig
    }

    static let name = "topic-configs.json"

    static func read(dataDirectory: String, files: any FileSystem = PosixFileSystem()) throws -> [String: Entry] {
        let path = "\(dataDirectory)/\(name)"
        guard files.fileExists(path) else { return [:] }
        return try JSONDecoder().decode([String: Entry].self, from: Data(try files.readFile(path)))
    }

    static func write(_ entries: [String: Entry], dataDirectory: String, files: any FileSystem = PosixFileSystem()) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try files.writeFileAtomically("\(dataDirectory)/\(name)", Array(try encoder.encode(entries)))
    }

    /// Each partition's log settings: the topic's overrides over `base`.
    static func logConfigurations(_ entries: [String: Entry], base: LogConfiguration) -> [TopicPartition: LogConfiguration] {
        var configurations: [TopicPartition: LogConfiguration] = [:]
        for (topic, entry) in entries where !entry.config.overrides.isEmpty {
            let configuration = entry.config.logConfiguration(base: base)
            for partition in 0..<entry.partitions { configurations[TopicPartition(topic: topic, partition: partition)] = configuration }
        }
        return configurations
    }
}
