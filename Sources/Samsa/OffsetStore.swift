import SamsaStorage
import Synchronization

/// Consumer groups' committed offsets: one file per group, `groups/<group>.offsets`, in Kafka's
/// offset-checkpoint format, rewritten atomically (temp file, fsync, rename, fsync of the directory)
/// on every commit, so a commit that returned survives a crash or power cut.
final class OffsetStore: Sendable {
    private let directory: String
    private let files: any FileSystem
    /// Committed offsets by group; a group's file is read on first use.
    private let committed = Mutex<[String: [TopicPartition: Int64]]>([:])

    init(directory: String, files: any FileSystem) throws(SamsaError) {
        self.directory = directory
        self.files = files
        try storage { () throws(StorageError) in try files.makeDirectory(directory) }
    }

    static func isValidGroup(_ group: String) -> Bool { TopicPartition.isValidTopic(group) }

    private func path(_ group: String) -> String { "\(directory)/\(group).offsets" }

    private func load(_ group: String, into all: inout [String: [TopicPartition: Int64]]) throws(SamsaError) -> [TopicPartition: Int64] {
        if let offsets = all[group] { return offsets }
        let offsets = try storage { () throws(StorageError) in try OffsetCheckpoint.read(path(group), files: files) }
        all[group] = offsets
        return offsets
    }

    /// The group's committed offsets.
    func offsets(of group: String) throws(SamsaError) -> [TopicPartition: Int64] {
        try committed.withLock { all throws(SamsaError) in try load(group, into: &all) }
    }

    /// Merges `offsets` into the group's and writes them durably before returning.
    func commit(_ offsets: [TopicPartition: Int64], group: String) throws(SamsaError) {
        guard !offsets.isEmpty else { return }
        try committed.withLock { all throws(SamsaError) in
            var merged = try load(group, into: &all)
            merged.merge(offsets) { _, new in new }
            try storage { () throws(StorageError) in try OffsetCheckpoint.write(merged, to: path(group), files: files) }
            all[group] = merged
        }
    }

    /// Drops every group's offsets for a deleted topic.
    func forget(topic: String) throws(SamsaError) {
        let groups = try storage { () throws(StorageError) in try files.listDirectory(directory) }
            .filter { $0.hasSuffix(".offsets") }.map { String($0.dropLast(".offsets".count)) }
        try committed.withLock { all throws(SamsaError) in
            for group in groups {
                let offsets = try load(group, into: &all)
                let kept = offsets.filter { $0.key.topic != topic }
                guard kept.count != offsets.count else { continue }
                try storage { () throws(StorageError) in try OffsetCheckpoint.write(kept, to: path(group), files: files) }
                all[group] = kept
            }
        }
    }
}
