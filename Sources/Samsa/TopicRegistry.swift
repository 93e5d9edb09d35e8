import Foundation
import SamsaStorage
import Synchronization

/// The topics of a data directory and their configurations: the directory's one registry,
/// `topics.json` (`TopicsFile`, shared with every `samsa` command and the broker). Each topic's
/// stored form is kept as read, so settings this side has no name for (a broker's) survive a rewrite.
final class TopicRegistry: Sendable {
    static let fileName = TopicsFile.name

    private let directory: String
    private let files: any FileSystem
    private let topics: Mutex<[String: StoredTopic]>
    /// Bumped after every change: lets a producer keep what it looked up until a topic comes or goes.
    let generation = Atomic<UInt64>(0)

    /// Reads the registry (none yet: empty). A writer's open converted an older layout first; a
    /// read-only open reads one as its conversion would make it (`TopicsConversion.topics`).
    init(directory: String, files: any FileSystem) throws(SamsaError) {
        self.directory = directory
        self.files = files
        let loaded = try storage { () throws(StorageError) in try TopicsConversion.topics(directory, files: files) } ?? [:]
        // The embedded queue's own bound (a topic's partitions are opened here at once).
        for (name, stored) in loaded.sorted(by: { $0.key < $1.key }) where !(1...TopicConfiguration.maxPartitions).contains(Int(stored.partitions)) {
            throw SamsaError(.corrupt, "\(directory)/\(Self.fileName): topic '\(name)': partitions must be 1...\(TopicConfiguration.maxPartitions), not \(stored.partitions)")
        }
        topics = Mutex(loaded)
    }

    /// Writes the registry as it is (a new directory's empty one).
    func save() throws(SamsaError) {
        try topics.withLock { topics throws(SamsaError) in try save(topics) }
    }

    var all: [String: TopicConfiguration] { topics.withLock { $0.mapValues(TopicConfiguration.init(stored:)) } }

    func configuration(of topic: String) -> TopicConfiguration? { topics.withLock { $0[topic].map(TopicConfiguration.init(stored:)) } }

    /// The topic as stored (id, partitions, Kafka-named configs).
    func stored(_ topic: String) -> StoredTopic? { topics.withLock { $0[topic] } }

    /// Adds a topic (with a new id) and persists the registry before returning.
    func add(_ topic: String, _ configuration: TopicConfiguration) throws(SamsaError) {
        try add(topic, StoredTopic(id: TopicId.random(), partitions: Int32(configuration.partitions), configs: configuration.configs))
    }

    func add(_ topic: String, _ stored: StoredTopic) throws(SamsaError) {
        try topics.withLock { topics throws(SamsaError) in
            guard topics[topic] == nil else { throw SamsaError(.topicExists, "topic '\(topic)' exists already") }
            var updated = topics
            updated[topic] = stored
            try save(updated)
            topics = updated
            generation.add(1, ordering: .releasing)
        }
    }

    /// Replaces an existing topic's stored form and persists the registry before returning.
    func replace(_ topic: String, _ stored: StoredTopic) throws(SamsaError) {
        try topics.withLock { topics throws(SamsaError) in
            guard topics[topic] != nil else { throw SamsaError(.unknownTopic, "no topic '\(topic)'") }
            var updated = topics
            updated[topic] = stored
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

    private func save(_ topics: [String: StoredTopic]) throws(SamsaError) {
        try storage { () throws(StorageError) in try TopicsFile.write(topics, directory, files: files) }
    }
}
