extension PartitionLog {
    /// Opens the log in `directory` for reading only: nothing is written, cut, rebuilt or locked, so it
    /// works on a read-only copy, on a full disk and beside a live writer in another process.
    ///
    /// Nothing is recovered either: each segment is served up to its last whole batch (a live writer's
    /// batch in progress, or a crash's torn tail, is left out), an index that fails its sanity check is
    /// ignored (lookups scan from the segment's start), and where a segment ends early the log ends
    /// there, as recovery would leave it. Batches are validated (CRC) when they are decoded, as always.
    /// `refresh()` picks up what a writer appended since.
    ///
    /// Where the whole batches end before `recoveryPoint` (records that had been made durable are
    /// missing or invalid) the log is opened damaged, as a writable open would: reads from there fail
    /// with `.corrupt` instead of looking like the end of the log.
    public static func openReadOnly(
        directory: String, configuration: LogConfiguration = LogConfiguration(), logStartOffset: Int64? = nil, recoveryPoint: Int64 = 0,
        files: any FileSystem = ReadOnlyFileSystem(), descriptors: DescriptorCache? = nil
    ) throws(StorageError) -> PartitionLog {
        let files: any FileSystem = files.isReadOnly ? files : ReadOnlyFileSystem(base: files)
        let descriptors = descriptors ?? DescriptorCache(files: files)
        let bases = try files.listDirectory(directory).compactMap(SegmentFiles.baseOffset(ofLogFile:)).sorted()
        guard !bases.isEmpty else {
            throw StorageError(.corrupt, path: directory, "the partition has no segment (.log) files")
        }
        let segments = try readableSegments(directory: directory, bases: bases, configuration: configuration, files: files, descriptors: descriptors)
        let last = segments.last!
        let end = last.nextOffset
        let start = min(max(logStartOffset ?? bases[0], segments[0].baseOffset), end)
        let damage =
            end < recoveryPoint
            ? LogDamage(
                offset: end, path: last.logPath, position: last.size, recoveryPoint: recoveryPoint,
                reason: "records from here to the recovery point \(recoveryPoint), which had been made durable, are missing or invalid")
            : nil
        return PartitionLog(
            directory: directory, configuration: configuration, files: files, descriptors: descriptors, segments: segments,
            logStartOffset: start, flushed: end, damage: damage, readOnly: true)
    }

    /// Segments from `bases` on, each up to its last whole batch, stopping after one that ends before
    /// the next begins (unless a follower's roll left that gap: `SegmentGap`).
    private static func readableSegments(
        directory: String, bases: [Int64], configuration: LogConfiguration, files: any FileSystem, descriptors: DescriptorCache
    ) throws(StorageError) -> [Segment] {
        var segments: [Segment] = []
        for (index, base) in bases.enumerated() {
            if let previous = segments.last, previous.nextOffset != base {
                let gap = try SegmentGap.isForced(
                    previousEnd: previous.nextOffset, nextBase: base, directory: directory, limits: configuration.segment.limits, files: files)
                if !gap { break }
            }
            // The last segment may be a live writer's active one, whose index it trims on roll: not
            // read at all (lookups in it scan from its start). The others' are copied, not mapped.
            let segment = try Segment(
                directory: directory, baseOffset: base, configuration: configuration.segmentSettings, writable: false,
                loadIndexes: index < bases.count - 1, files: files, descriptors: descriptors)
            let whole = try segment.loadEndForReading()
            segments.append(segment)
            if !whole && index < bases.count - 1 { break }
        }
        return segments
    }

    /// Read-only logs: picks up batches a writer appended since the last look, and segments it rolled
    /// to. Returns true when the log end moved. (A writer's truncation or retention below what this
    /// log serves shows as read errors or offsets out of range; reopen then.)
    @discardableResult
    public func refresh() throws(StorageError) -> Bool {
        guard isReadOnly, damage == nil else { return false }
        return try state.withLock { state throws(StorageError) -> Bool in
            let before = publishedEnd.load(ordering: .relaxed)
            let last = state.segments[state.segments.count - 1]
            let whole = try last.loadEndForReading(continuing: true)
            if whole {
                let bases = try files.listDirectory(directory).compactMap(SegmentFiles.baseOffset(ofLogFile:)).sorted().filter { $0 > last.baseOffset }
                var follows = bases.first == last.nextOffset
                if let next = bases.first, !follows {
                    follows = try SegmentGap.isForced(
                        previousEnd: last.nextOffset, nextBase: next, directory: directory, limits: state.configuration.segment.limits, files: files)
                }
                if follows {
                    state.segments += try Self.readableSegments(
                        directory: directory, bases: bases, configuration: state.configuration, files: files, descriptors: descriptors)
                }
            }
            let end = state.segments[state.segments.count - 1].nextOffset
            publishedEnd.store(end, ordering: .releasing)
            return end != before
        }
    }
}
