/// What opening a log found and did.
public struct RecoveryReport: Sendable, Hashable, CustomStringConvertible {
    /// Segments whose batches were validated one by one.
    public var segmentsScanned = 0
    /// Bytes cut off the end of scanned segments (torn writes, garbage).
    public var bytesTruncated = 0
    /// Segments whose indexes were rebuilt from the log.
    public var indexesRebuilt = 0
    /// Segments removed because they followed a truncation point.
    public var segmentsDeleted = 0
    /// Of `bytesTruncated`, bytes in tails of zeros only: write-ahead space not yet cut back, or
    /// blocks whose data never reached the disk.
    public var zeroTailBytes = 0

    public init() {}

    public var description: String {
        "scanned \(segmentsScanned) segments, truncated \(bytesTruncated) bytes (\(zeroTailBytes) of them zeros), rebuilt \(indexesRebuilt) indexes, deleted \(segmentsDeleted) segments"
    }
}

extension PartitionLog {
    /// Opens (or creates) the log in `directory`.
    ///
    /// - After a clean shutdown: segments are opened and their indexes sanity-checked; no scan.
    /// - Otherwise: every segment from the one holding `recoveryPoint` on is scanned batch by batch and
    ///   truncated at the first invalid byte; segments after a truncation are deleted; indexes of
    ///   scanned segments are rebuilt. The cost grows with the unflushed tail, not the whole log.
    /// An index that fails its sanity check is rebuilt in either case.
    public static func open(
        directory: String, configuration: LogConfiguration = LogConfiguration(), cleanShutdown: Bool = false,
        recoveryPoint: Int64 = 0, logStartOffset: Int64? = nil, files: any FileSystem = PosixFileSystem(),
        descriptors: DescriptorCache? = nil
    ) throws(StorageError) -> (log: PartitionLog, report: RecoveryReport) {
        let descriptors = descriptors ?? DescriptorCache(files: files)
        try files.makeDirectory(directory)
        let bases = try segmentBases(in: directory, files: files)
        var report = RecoveryReport()
        var segments: [Segment] = []
        let start = logStartOffset ?? bases.first ?? 0
        if bases.isEmpty {
            segments = [try Segment(directory: directory, baseOffset: start, configuration: configuration.segmentSettings, writable: true, files: files, descriptors: descriptors)]
        }
        var expected = bases.first ?? start
        for (index, base) in bases.enumerated() {
            let isLast = index == bases.count - 1
            let nextBase = isLast ? Int64.max : bases[index + 1]
            let mustScan = !cleanShutdown && nextBase > recoveryPoint
            // A segment to scan opens writable (recovery may truncate it) and is sealed afterwards.
            var segment = try Segment(
                directory: directory, baseOffset: base, configuration: configuration.segmentSettings, writable: isLast || mustScan, files: files, descriptors: descriptors)
            var truncated = false
            if mustScan {
                let result = try segment.recover(expectedBaseOffset: max(expected, base))
                report.segmentsScanned += 1
                report.indexesRebuilt += 1
                report.bytesTruncated += result.truncatedBytes
                report.zeroTailBytes += result.zeroTailBytes
                truncated = result.truncatedBytes > result.zeroTailBytes
            } else {
                do throws(StorageError) {
                    try segment.loadEnd()
                } catch where error.code == .corrupt {
                    // Recovery may cut the file: it needs the segment writable.
                    if segment.sealed {
                        segment = try Segment(
                            directory: directory, baseOffset: base, configuration: configuration.segmentSettings, writable: true, files: files,
                            descriptors: descriptors)
                    }
                    let result = try segment.recover(expectedBaseOffset: max(expected, base))
                    report.indexesRebuilt += 1
                    report.bytesTruncated += result.truncatedBytes
                    report.zeroTailBytes += result.zeroTailBytes
                    truncated = result.truncatedBytes > result.zeroTailBytes
                }
            }
            if !isLast { try segment.seal() }
            segments.append(segment)
            expected = segment.nextOffset
            // A scanned segment that now ends before the next one begins lost its tail (a torn write,
            // or a power cut took bytes no fsync covered): what follows cannot be reached in order.
            // (A tail of zeros only, where the segment still ends at the next one's base, is
            // write-ahead space whose cut a power cut undid: nothing was lost.)
            let lostTail = mustScan && !isLast && segment.nextOffset != nextBase
            if (truncated || lostTail) && !isLast {
                for later in bases[(index + 1)...] {
                    try deleteSegmentFiles(directory: directory, baseOffset: later, files: files)
                    report.segmentsDeleted += 1
                }
                break
            }
        }
        // The last segment takes appends: reopen it writable if it was sealed above.
        if let last = segments.last, last.sealed {
            let active = try Segment(directory: directory, baseOffset: last.baseOffset, configuration: configuration.segmentSettings, writable: true, files: files, descriptors: descriptors)
            try active.loadEnd()
            segments[segments.count - 1] = active
        }
        let end = segments.last!.nextOffset
        let flushed = cleanShutdown ? end : min(max(recoveryPoint, 0), end)
        let log = PartitionLog(
            directory: directory, configuration: configuration, files: files, descriptors: descriptors, segments: segments,
            logStartOffset: min(max(start, segments.first!.baseOffset), end), flushed: flushed)
        // What recovery kept is synced now: it is the log from here on, and readers limited to the
        // flushed offset (and the recovery point) may then cover all of it.
        if flushed < end { try log.flush() }
        return (log, report)
    }

    /// Base offsets of the `.log` files in `directory`, sorted; removes leftovers of interrupted
    /// deletions and checkpoint writes.
    static func segmentBases(in directory: String, files: any FileSystem) throws(StorageError) -> [Int64] {
        var bases: [Int64] = []
        for name in try files.listDirectory(directory) {
            if name.hasSuffix(SegmentFiles.deletedSuffix) || name.hasSuffix(".tmp") {
                try files.unlink("\(directory)/\(name)")
            } else if let base = SegmentFiles.baseOffset(ofLogFile: name) {
                bases.append(base)
            }
        }
        return bases.sorted()
    }

    static func deleteSegmentFiles(directory: String, baseOffset: Int64, files: any FileSystem) throws(StorageError) {
        try files.unlink(SegmentFiles.log(directory, baseOffset))
        try files.unlink(SegmentFiles.index(directory, baseOffset))
        try files.unlink(SegmentFiles.timeIndex(directory, baseOffset))
    }
}
