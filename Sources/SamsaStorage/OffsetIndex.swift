/// The sparse offset index of one segment (`.index`): entries of (relative offset UInt32, file position
/// UInt32), big-endian, 8 bytes, both strictly increasing. The segment's start is implicit (no entry for
/// relative offset 0), so a zero relative offset marks an unwritten slot. An entry is added when at least
/// `indexIntervalBytes` of log were written since the last one, so a lookup lands within one interval
/// of any batch.
///
/// Not checksummed: recovery rebuilds it from the segment; `sanityCheck` refuses a damaged one.
final class OffsetIndex: Sendable {
    enum Layout: IndexEntryLayout {
        static let entrySize = 8
        static func isUnwritten(_ region: MappedRegion, at index: Int) -> Bool {
            region.loadUInt32(at: index * entrySize) == 0
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

    /// The entry at `slot`: an absolute offset and its file position.
    func entry(_ slot: Int) -> (offset: Int64, position: Int) {
        file.withRegion { region, _ in
            (baseOffset + Int64(region.loadUInt32(at: slot * 8)), Int(region.loadUInt32(at: slot * 8 + 4)))
        } ?? (baseOffset, 0)
    }

    /// The last entry whose offset is at most `offset`, or the segment's start when there is none: a
    /// scan of the segment from that position finds the batch holding `offset` within one interval.
    func lookup(_ offset: Int64) -> (offset: Int64, position: Int) {
        file.withRegion { region, count -> (Int64, Int) in
            guard count > 0, offset >= baseOffset else { return (baseOffset, 0) }
            let relative = offset - baseOffset
            var low = 0, high = count - 1, found = -1
            while low <= high {
                let middle = (low + high) / 2
                if Int64(region.loadUInt32(at: middle * 8)) <= relative {
                    found = middle
                    low = middle + 1
                } else {
                    high = middle - 1
                }
            }
            guard found >= 0 else { return (baseOffset, 0) }
            return (baseOffset + Int64(region.loadUInt32(at: found * 8)), Int(region.loadUInt32(at: found * 8 + 4)))
        } ?? (baseOffset, 0)
    }

    /// Adds an entry; offsets and positions must increase.
    func append(offset: Int64, position: Int) throws(StorageError) {
        let relative = offset - baseOffset
        guard relative >= 0, relative <= Int64(UInt32.max), position >= 0, position <= Int(UInt32.max) else {
            throw StorageError(.invalidArgument, path: path, "offset \(offset) or position \(position) does not fit the index")
        }
        if entryCount > 0 {
            let last = entry(entryCount - 1)
            guard offset > last.offset, position > last.position else {
                throw StorageError(
                    .invalidArgument, path: path, "entry (\(offset), \(position)) does not follow (\(last.offset), \(last.position))")
            }
        } else if relative == 0 {
            return  // the segment's start needs no entry
        }
        try file.append { region, at in
            region.store(UInt32(relative), at: at)
            region.store(UInt32(position), at: at + 4)
        }
    }

    /// Drops entries for offsets at or past `offset`.
    func truncate(from offset: Int64) {
        file.dropTrailing { entry($0).offset >= offset }
    }

    /// Drops every entry.
    func reset() { file.reset() }

    /// Grows the file, if needed, so the next entry has room (see `IndexFile.reserveNextEntry`).
    func reserveNextEntry() throws(StorageError) { try file.reserveNextEntry() }

    /// Checks what a crash could have damaged: entries increasing, positions inside the segment.
    func sanityCheck(segmentSize: Int) throws(StorageError) {
        var previous: (offset: Int64, position: Int)? = nil
        for slot in 0..<entryCount {
            let current = entry(slot)
            if let previous, current.offset <= previous.offset || current.position <= previous.position {
                throw StorageError(.corrupt, path: path, "entry \(slot) (\(current.offset), \(current.position)) does not follow (\(previous.offset), \(previous.position))")
            }
            if current.position >= max(segmentSize, 1) {
                throw StorageError(.corrupt, path: path, "entry \(slot) points at position \(current.position), past the segment's \(segmentSize) bytes")
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
