import Foundation
import SamsaStorage

/// A single broker's dynamic broker configs (AlterConfigs on a BROKER resource), durable in
/// `<data>/dynamic-broker-configs.json`: per entity ("<default>" or the broker id) its configs under
/// Kafka's broker names. In a cluster they live in coordination (`/config/brokers/...`) instead.
/// Written atomically (temp file, fsync, rename); a missing file means none.
enum DynamicBrokerConfigFile {
    static let name = "dynamic-broker-configs.json"

    static func read(dataDirectory: String, files: any FileSystem = PosixFileSystem()) throws -> [String: [String: String]] {
        let path = "\(dataDirectory)/\(name)"
        guard files.fileExists(path) else { return [:] }
        return try JSONDecoder().decode([String: [String: String]].self, from: Data(try files.readFile(path)))
    }

    static func write(_ entries: [String: [String: String]], dataDirectory: String, files: any FileSystem = PosixFileSystem()) throws(StorageError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes: Data
        do {
            bytes = try encoder.encode(entries)
        } catch {
            throw StorageError(.io, path: "\(dataDirectory)/\(name)", "encoding: \(error)")
        }
        try files.writeFileAtomically("\(dataDirectory)/\(name)", Array(bytes))
    }

    /// Loads the stored configs into `configs` (the entities this broker knows: its own id and the default).
    static func load(_ stored: [String: [String: String]], into configs: BrokerConfigs) {
        for entity in [BrokerConfigs.Entity.clusterDefault, .broker(configs.brokerId)] {
            if let values = stored[entity.storedName] { configs.replace(entity, with: values) }
        }
    }
}
