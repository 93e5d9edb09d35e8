import SamsaStorage
import Synchronization

/// Each partition's leader epochs and the offset each began at (Kafka's leader-epoch checkpoint,
/// KIP-101), durable in `<data>/__leader_epochs/<topic>-<partition>`: a version line (0), a count line,
/// then `epoch start-offset` lines, written atomically on every change. Changes happen only on
/// leadership changes, new epochs in fetched batches and truncations, and a partition's only on its
/// writer's queue (so writes of one file never overlap). Lets a follower find where its log and its
/// leader's agree.
final class LeaderEpochs: Sendable {
    struct Entry: Sendable, Hashable {
        var epoch: LeaderEpoch
        var startOffset: Int64
    }

    static let directoryName = "__leader_epochs"
    private let directory: String
    private let files: any FileSystem
    private let entries: Mutex<[TopicPartition: [Entry]]>

    init(dataDirectory: String, files: any FileSystem = PosixFileSystem()) throws(StorageError) {
        directory = "\(dataDirectory)/\(Self.directoryName)"
        self.files = files
        if !files.fileExists(directory) {
            try files.makeDirectory(directory)
            try files.syncDirectory(dataDirectory)
        }
        var table: [TopicPartition: [Entry]] = [:]
        for name in try files.listDirectory(directory) {
            guard let partition = TopicPartition(directoryName: name) else { continue }
            let path = "\(directory)/\(name)"
            let lines = String(decoding: try files.readFile(path), as: UTF8.self).split(separator: "\n")
            guard lines.count >= 2, lines[0] == "0", let count = Int(lines[1]), lines.count == count + 2 else {
                throw StorageError(.corrupt, path: path, "malformed leader-epoch checkpoint")
            }
            table[partition] = try lines.dropFirst(2).map { line throws(StorageError) in
                let fields = line.split(separator: " ")
                guard fields.count == 2, let epoch = Int32(fields[0]), let start = Int64(fields[1]) else {
                    throw StorageError(.corrupt, path: path, "malformed leader-epoch checkpoint line '\(line)'")
                }
                return Entry(epoch: LeaderEpoch(epoch), startOffset: start)
            }
        }
        entries = Mutex(table)
    }

    func entries(_ partition: TopicPartition) -> [Entry] { entries.withLock { $0[partition] ?? [] } }

    func latest(_ partition: TopicPartition) -> Entry? { entries(partition).last }

    /// Records that `epoch` begins at `startOffset` (nothing if it is not newer than the latest).
    func assign(_ partition: TopicPartition, epoch: LeaderEpoch, startOffset: Int64) throws(StorageError) {
        var list = entries(partition)
        if let last = list.last, last.epoch >= epoch { return }
        // An epoch that began at or before an older one's start replaces it (that one left no records).
        list.removeAll { $0.startOffset >= startOffset }
        list.append(Entry(epoch: epoch, startOffset: startOffset))
        try replace(partition, with: list)
    }

    /// Forgets epochs that begin at or after `offset` (the log was cut there).
    func truncate(_ partition: TopicPartition, from offset: Int64) throws(StorageError) {
        let list = entries(partition)
        guard list.contains(where: { $0.startOffset >= offset }) else { return }
        try replace(partition, with: list.filter { $0.startOffset < offset })
    }

    func remove(_ partition: TopicPartition) throws(StorageError) {
        entries.withLock { _ = $0.removeValue(forKey: partition) }
        let path = "\(directory)/\(partition.directoryName)"
        if files.fileExists(path) { try files.unlink(path) }
    }

    /// Kafka's `endOffsetFor`: the largest epoch at most `requested` and the offset it ended at (the
    /// next epoch's start, or `logEnd` for the latest); (-1, -1) when `requested` is newer than any.
    func endOffset(_ partition: TopicPartition, for requested: LeaderEpoch, logEnd: Int64) -> (epoch: LeaderEpoch, endOffset: Int64) {
        let list = entries(partition)
        guard let latest = list.last else { return (.none, -1) }
        if requested == latest.epoch { return (latest.epoch, logEnd) }
        if requested > latest.epoch { return (.none, -1) }
        guard let higher = list.firstIndex(where: { $0.epoch > requested }) else { return (latest.epoch, logEnd) }
        let floor = higher > 0 ? list[higher - 1].epoch : LeaderEpoch.none
        return (floor, list[higher].startOffset)
    }

    /// Writes the partition's epochs, then keeps them: if the write fails (a full disk) nothing
    /// changes, so the retry writes them again. (Changes of one partition never overlap: see above.)
    private func replace(_ partition: TopicPartition, with list: [Entry]) throws(StorageError) {
        let lines = list.map { "\($0.epoch) \($0.startOffset)\n" }.joined()
        try files.writeFileAtomically("\(directory)/\(partition.directoryName)", Array("0\n\(list.count)\n\(lines)".utf8))
        entries.withLock { $0[partition] = list }
    }
}
