import Foundation
import SamsaStorage
import Synchronization

/// The topics of a data directory and their configurations, kept in `topics.json` (written
/// atomically: temp file, fsync, rename, fsync of the directory).
final class TopicRegistry: Sendable {
    static let fileName = "topics.json"

    private let path: String
    private let files: any FileSystem
    private let topics: Mutex<[String: TopicConfiguration]>
    /// Bumped after every change: lets a producer keep what it looked up until a topic comes or goes.
    let generation = Atomic<UInt64>(0)

    init(directory: String, files: any FileSystem) throws(SamsaError) {
        let path = "\(directory)/\(Self.fileName)"
        self.path = path
        self.files = files
        var loaded: [String: TopicConfiguration] = [:]
        if files.fileExists(path) {
            let bytes = try storage { () throws(StorageError) in try files.readFile(path) }
            do {
                loaded = try JSONDecoder().decode([String: TopicConfiguration].self, from: Data(bytes))
            } catch {
                throw SamsaError(.corrupt, "\(path) cannot be read: \(error)")
            }
            try Self.check(loaded, path: path)
        }
        topics = Mutex(loaded)
    }

    /// Refuses a registry no Samsa could have written (edited by hand, damaged): every topic must
    /// pass the checks `createTopic` makes, so a bad number fails here, clearly, instead of trapping
    /// or exhausting file descriptors later.
    static func check(_ topics: [String: TopicConfiguration], path: String) throws(SamsaError) {
        for (name, configuration) in topics.sorted(by: { $0.key < $1.key }) {
            guard TopicPartition.isValidTopic(name) else { throw SamsaError(.corrupt, "\(path): invalid topic name '\(name)'") }
            do {
                try configuration.validate()
            } catch {
                throw SamsaError(.corrupt, "\(path): topic '\(name)': \(error.message)")
            }
        }
    }

    /// Writes the registry as it is (a new directory's empty one).
    func save() throws(SamsaError) {
        try topics.withLock { topics throws(SamsaError) in try save(topics) }
    }

    var all: [String: TopicConfiguration] { topics.withLock { $0 } }

    func configuration(of topic: String) -> TopicConfiguration? { topics.withLock { $0[topic] } }

    /// Adds a topic and persists the registry before returning.
    func add(_ topic: String, _ configuration: TopicConfiguration) throws(SamsaError) {
        try topics.withLock { topics throws(SamsaError) in
            guard topics[topic] == nil else { throw SamsaError(.topicExists, "topic '\(topic)' exists already") }
            var updated = topics
            updated[topic] = configuration
            try save(updated)
            topics = updated
            generation.add(1, ordering: .releasing)
        }
    }

    /// Removes a topic and persists the registry before returning; false when it did not exist.
    func remove(_ topic: String) throws(SamsaError) -> Bool {
        try topics.withLock { topics throws(SamsaError) -> Bool in
            guard topics[topic] != nil else { return false }
            var updated = topics
            updated.removeValue(forKey: topic)
            try save(updated)
            topics = updated
            generation.add(1, ordering: .releasing)
            return true
        }
    }

    private func save(_ topics: [String: TopicConfiguration]) throws(SamsaError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(topics)
        } catch {
            throw SamsaError(.invalidArgument, "cannot encode the topic registry: \(error)")
        }
        try storage { () throws(StorageError) in try files.writeFileAtomically(path, Array(data)) }
    }
}
