/// A topic and partition: the name of a partition log's directory, `<topic>-<partition>`.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    /// Kafka's rule for topic names: 1-249 characters of ASCII letters, digits, '.', '_' and '-'.
    public static func isValidTopic(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 249 && name != "." && name != ".."
            && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)) }
    }

    public var directoryName: String { "\(topic)-\(partition)" }
    public var description: String { directoryName }

    /// Parses a directory name; the topic may itself contain '-'.
    public init?(directoryName: String) {
        guard let dash = directoryName.lastIndex(of: "-"), let partition = Int32(directoryName[directoryName.index(after: dash)...]),
            partition >= 0
        else { return nil }
        let topic = String(directoryName[..<dash])
        guard Self.isValidTopic(topic) else { return nil }
        self.init(topic: topic, partition: partition)
    }

    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        (a.topic, a.partition) < (b.topic, b.partition)
    }
}

/// Kafka's offset checkpoint file: a version line (0), a count line, then `topic partition offset`
/// lines. Written atomically (temp file, fsync, rename, fsync of the directory).
public enum OffsetCheckpoint {
    public static func write(_ offsets: [TopicPartition: Int64], to path: String, files: any FileSystem) throws(StorageError) {
        var text = "0\n\(offsets.count)\n"
        for (partition, offset) in offsets.sorted(by: { $0.key < $1.key }) {
            text += "\(partition.topic) \(partition.partition) \(offset)\n"
        }
        try files.writeFileAtomically(path, Array(text.utf8))
    }

    /// The offsets in `path`; empty when the file does not exist. A malformed file is an error, never
    /// silently read as empty.
    public static func read(_ path: String, files: any FileSystem) throws(StorageError) -> [TopicPartition: Int64] {
        guard files.fileExists(path) else { return [:] }
        let lines = String(decoding: try files.readFile(path), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        func malformed(_ why: String) -> StorageError { StorageError(.corrupt, path: path, "malformed checkpoint: \(why)") }
        // `count <= lines.count - 2`, not `lines.count >= count + 2`: a count of Int.max must not overflow.
        guard lines.count >= 2, lines[0] == "0", let count = Int(lines[1]), count >= 0, count <= lines.count - 2 else {
            throw malformed("bad header")
        }
        var offsets: [TopicPartition: Int64] = [:]
        for line in lines[2..<(2 + count)] {
            let fields = line.split(separator: " ")
            guard fields.count == 3, let partition = Int32(fields[1]), let offset = Int64(fields[2]) else {
                throw malformed("bad line '\(line)'")
            }
            offsets[TopicPartition(topic: String(fields[0]), partition: partition)] = offset
        }
        return offsets
    }
}
