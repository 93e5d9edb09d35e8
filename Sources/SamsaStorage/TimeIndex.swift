/// The time index of one segment (`.timeindex`): entries of (timestamp Int64, relative offset UInt32),
/// big-endian, 12 bytes, timestamps strictly increasing. An entry is added with an offset-index entry
/// when the segment's largest timestamp grew since the last one; it maps that timestamp to the offset
/// of the batch that carried it. A slot of all zeros (timestamp 0 at the segment's base offset) is
/// taken as unwritten; such an entry would only lose a lookup hint, never data.
final class TimeIndex: Sendable {
    enum Layout: IndexEntryLayout {
        static let entrySize = 12
        static func isUnwritten(_ region: MappedRegion, at index: Int) -> Bool {
            region.loadInt64(at: index * entrySize) == 0 && region.loadUInt32(at: index * entrySize + 8) == 0
        }
    }

    let baseOffset: Int64
    private let file: IndexFile<Layout>

    init(
        path: String, baseOffset: Int64, maxSize: Int, writable: Bool, load: Bool = true, files: any FileSystem, mappings: MappingCache? = nil
    )
        throws(StorageError)
    {
        self.baseOffset = baseOffset
        self.file = try IndexFile(path: path, maxSize: maxSize, writable: writable, load: load, files: files, mappings: mappings)
    }

    var path: String { file.path }
    var entryCount: Int { file.entryCount }
    var isFull: Bool { file.isFull }

    func entry(_ slot: Int) -> (timestamp: Int64, offset: Int64) {
        file.withRegion { region, _ in
            (region.loadInt64(at: slot * 12), baseOffset + Int64(region.loadUInt32(at: slot * 12 + 8)))
        } ?? (-1, baseOffset)
    }

    /// The last entry, if any: the segment's largest indexed timestamp.
    var lastEntry: (timestamp: Int64, offset: Int64)? {
        entryCount > 0 ? entry(entryCount - 1) : nil
    }

    /// The offset to start scanning from for the first record with a timestamp at or after `timestamp`:
    /// the offset of the last entry whose timestamp is below it, or the segment's start.
    func lookup(_ timestamp: Int64) -> Int64 {
        file.withRegion { region, count -> Int64 in
            var low = 0, high = count - 1, found = -1
            while low <= high {
                let middle = (low + high) / 2
                if region.loadInt64(at: middle * 12) < timestamp {
                    found = middle
                    low = middle + 1
                } else {
                    high = middle - 1
                }
            }
            return found < 0 ? baseOffset : baseOffset + Int64(region.loadUInt32(at: found * 12 + 8))
        } ?? baseOffset
    }

    /// Adds an entry if `timestamp` is larger than the last one's (otherwise nothing to record).
    func appendIfLarger(timestamp: Int64, offset: Int64) throws(StorageError) {
        if let last = lastEntry, timestamp <= last.timestamp { return }
        let relative = offset - baseOffset
        guard relative >= 0, relative <= Int64(UInt32.max) else {
            throw StorageError(.invalidArgument, path: path, "offset \(offset) does not fit the time index")
        }
        try file.append { region, at in
            region.store(timestamp, at: at)
            region.store(UInt32(relative), at: at + 8)
        }
    }

    /// Drops entries for offsets at or past `offset`.
    func truncate(from offset: Int64) {
        file.dropTrailing { entry($0).offset >= offset }
    }

    func reset() { file.reset() }

    /// Grows the file, if needed, so the next entry has room (see `IndexFile.reserveNextEntry`).
    func reserveNextEntry() throws(StorageError) { try file.reserveNextEntry() }

    /// Timestamps increasing, offsets not decreasing and inside the segment's offsets.
    func sanityCheck(nextOffset: Int64) throws(StorageError) {
        var previous: (timestamp: Int64, offset: Int64)? = nil
        for slot in 0..<entryCount {
            let current = entry(slot)
            if let previous, current.timestamp <= previous.timestamp || current.offset < previous.offset {
                throw StorageError(.corrupt, path: path, "entry \(slot) (\(current.timestamp), \(current.offset)) does not follow the one before")
            }
            if current.offset >= max(nextOffset, baseOffset + 1) {
                throw StorageError(.corrupt, path: path, "entry \(slot) points at offset \(current.offset), past the segment's end \(nextOffset)")
            }
            previous = current
        }
    }

    /// Stops using the entries, leaving the file alone (read-only opens of a damaged index).
    func ignoreEntries() { file.ignoreEntries() }

    func sync() throws(StorageError) { try file.sync() }
    func trim() throws(StorageError) { try file.trim() }
    func close() { file.close() }
    func markRenamed() { file.markRenamed() }
}
