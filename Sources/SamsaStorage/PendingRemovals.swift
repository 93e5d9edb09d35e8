/// Changes to several partitions at once that must be all or nothing across a crash: a topic's
/// creation and its deletion. Before such a change, a journal file `pending-removal-<id>` in the data
/// directory names the partition directories that a crash part-way must leave absent; the change
/// removes the journal once it is done. Opening the directory removes every named partition still there,
/// then the journal: an interrupted create is rolled back (it was never acknowledged), an interrupted
/// delete is finished (no half topic comes back).
///
/// One file per change, named by a random id, so concurrent changes share no state and no lock. The
/// name has a fixed length, so it fits whatever the topic name's length; it never parses as a partition
/// directory (`removal` is not a partition number).
enum PendingRemovals {
    static let prefix = "pending-removal-"

    /// Durably records that `partitions` must be removed should a crash interrupt what follows; returns
    /// the journal's path, for `end`.
    static func begin(_ partitions: [TopicPartition], in directory: String, files: any FileSystem) throws(StorageError) -> String {
        let id = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let path = "\(directory)/\(prefix)\(id)"
        let text = partitions.map(\.directoryName).joined(separator: "\n") + "\n"
        try files.writeFileAtomically(path, Array(text.utf8))
        return path
    }

    /// The change is complete: the journal goes (durably, so a later crash does not undo the change).
    static func end(_ path: String, files: any FileSystem) throws(StorageError) {
        try files.unlink(path)
        try files.syncDirectory(directoryName(of: path))
    }

    /// At open: removes the partitions of every journal left by a crash (with `remove`, which deletes a
    /// partition directory's Samsa files), then the journals, and any half-written journal (`.tmp`:
    /// the crash came before the change began). Returns the partitions removed.
    @discardableResult
    static func finish(
        in directory: String, files: any FileSystem, remove: (String) throws(StorageError) -> Void
    ) throws(StorageError) -> [TopicPartition] {
        var removed: [TopicPartition] = []
        var changed = false
        for name in try files.listDirectory(directory) where name.hasPrefix(prefix) {
            let path = "\(directory)/\(name)"
            changed = true
            if name.hasSuffix(".tmp") {
                try files.unlink(path)
                continue
            }
            let text = String(decoding: try files.readFile(path), as: UTF8.self)
            for line in text.split(separator: "\n") {
                // Only names that are partition directories: the journal never widens what is removed.
                guard let partition = TopicPartition(directoryName: String(line)) else { continue }
                let partitionPath = "\(directory)/\(partition.directoryName)"
                if files.fileExists(partitionPath) {
                    try remove(partitionPath)
                    removed.append(partition)
                }
            }
            try files.unlink(path)
        }
        if changed { try files.syncDirectory(directory) }
        return removed
    }
}
