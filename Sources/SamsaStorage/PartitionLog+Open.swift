import Glibc
import NIOCore
import SamsaRecords

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
    /// Damage that recovery refused to repair (the log is served up to it and refuses writes).
    public var damage: LogDamage?

    public init() {}

    public var description: String {
        var text = "scanned \(segmentsScanned) segments, truncated \(bytesTruncated) bytes (\(zeroTailBytes) of them zeros), rebuilt \(indexesRebuilt) indexes, deleted \(segmentsDeleted) segments"
        if let damage { text += "; \(damage)" }
        return text
    }
}

/// Damage found when a log was opened: records below the recovery point (made durable, perhaps
/// acknowledged) are missing or invalid, by a cut file or a changed byte. The log is then served up to
/// `offset` and refuses writes, so nothing after the damage is deleted and no offset is used twice;
/// `samsa verify` shows the details.
public struct LogDamage: Sendable, Hashable, CustomStringConvertible {
    /// The first offset that cannot be read.
    public var offset: Int64
    /// The segment file holding the damage, and the byte where its valid prefix ends.
    public var path: String
    public var position: Int
    /// The recovery point the log was opened with: records below it had been made durable.
    public var recoveryPoint: Int64
    public var reason: String

    public var description: String {
        "damaged at offset \(offset) (\(path), byte \(position)): \(reason); reads stop there and writes are refused, so nothing after it is lost (see samsa verify)"
    }
}

extension PartitionLog {
    /// Opens (or creates) the log in `directory`.
    ///
    /// - After a clean shutdown: segments are opened and their indexes sanity-checked; no scan.
    /// - Otherwise: every segment from the one holding `recoveryPoint` on is scanned batch by batch.
    /// An index that fails its sanity check is rebuilt in either case.
    ///
    /// Where the valid batches end early, recovery tells a torn tail from damage:
    /// - past the recovery point it is what a crash left (unsynced bytes): the segment is cut there
    ///   and later segments are deleted (nothing there had been made durable);
    /// - below the recovery point it is damage (a cut file, a flipped byte) and never "repaired":
    ///   nothing is cut or deleted, the log is served up to it and refuses writes (`damage`,
    ///   `RecoveryReport.damage`), and the checkpoint keeps the recovery point so the next open sees
    ///   the damage again. After a clean shutdown the recovery point is the log end.
    /// The cost grows with the unflushed tail, not the whole log.
    public static func open(
        directory: String, configuration: LogConfiguration = LogConfiguration(), cleanShutdown: Bool = false,
        recoveryPoint: Int64 = 0, logStartOffset: Int64? = nil, files: any FileSystem = PosixFileSystem(),
        descriptors: DescriptorCache? = nil
    ) throws(StorageError) -> (log: PartitionLog, report: RecoveryReport) {
        let descriptors = descriptors ?? DescriptorCache(files: files)
        try files.makeDirectory(directory)
        // A clean interrupted by a crash: its `.cleaned` files go, a committed `.swap` is finished.
        try finishInterruptedCleaning(in: directory, files: files)
        let bases = try segmentBases(in: directory, files: files)
        var report = RecoveryReport()
        var segments: [Segment] = []
        let start = logStartOffset ?? bases.first ?? 0
        if bases.isEmpty {
            segments = [try Segment(directory: directory, baseOffset: start, configuration: configuration.segmentSettings, writable: true, files: files, descriptors: descriptors)]
        }
        var expected = bases.first ?? start
        var damage: LogDamage?
        for (index, base) in bases.enumerated() {
            let isLast = index == bases.count - 1
            let nextBase = isLast ? Int64.max : bases[index + 1]
            let mustScan = !cleanShutdown && nextBase > recoveryPoint
            // A segment to scan opens writable (recovery may truncate it) and is sealed afterwards.
            var segment = try Segment(
                directory: directory, baseOffset: base, configuration: configuration.segmentSettings, writable: isLast || mustScan, files: files, descriptors: descriptors)
            var scan: Segment.RecoveryResult?
            if mustScan {
                scan = try segment.scan(expectedBaseOffset: max(expected, base))
                report.segmentsScanned += 1
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
                    scan = try segment.scan(expectedBaseOffset: max(expected, base))
                }
            }
            if scan != nil { report.indexesRebuilt += 1 }
            // Invalid bytes that are not all zeros, or a segment that ends before the next one begins
            // (a tail of zeros only, where the segment still ends at the next one's base, is
            // write-ahead space whose cut a power cut undid: nothing was lost).
            let garbage = scan.map { $0.truncatedBytes > $0.zeroTailBytes } ?? false
            // (A follower's roll past a gap too large for one segment ends one early on purpose: `SegmentGap`.)
            var endsEarly = !isLast && segment.nextOffset != nextBase
            if endsEarly {
                endsEarly = try !SegmentGap.isForced(
                    previousEnd: segment.nextOffset, nextBase: nextBase, directory: directory, limits: configuration.segment.limits, files: files)
            }
            if garbage || endsEarly {
                // Below the recovery point every record had been made durable: missing ones are damage.
                // Past it, the end of what a crash kept (data may reach the disk out of order, so valid
                // batches after the hole prove nothing): cut there, as Kafka's recovery does.
                if segment.nextOffset < recoveryPoint {
                    damage = LogDamage(
                        offset: segment.nextOffset, path: segment.logPath, position: segment.size, recoveryPoint: recoveryPoint,
                        reason: "records from here to the recovery point \(recoveryPoint), which had been made durable, are missing or invalid")
                    segment.keepDamaged()
                    segments.append(segment)
                    break
                }
            }
            if let scan {
                // A torn tail (or zeros): cut it; what follows it held nothing valid.
                try segment.cutTail(scan)
                report.bytesTruncated += scan.truncatedBytes
                report.zeroTailBytes += scan.zeroTailBytes
            }
            if !isLast { try segment.seal() }
            segments.append(segment)
            expected = segment.nextOffset
            if (garbage || endsEarly) && !isLast {
                for later in bases[(index + 1)...] {
                    try deleteSegmentFiles(directory: directory, baseOffset: later, files: files)
                    report.segmentsDeleted += 1
                }
                break
            }
        }
        report.damage = damage
        // The last segment takes appends: reopen it writable if it was sealed above.
        if damage == nil, let last = segments.last, last.sealed {
            let active = try Segment(directory: directory, baseOffset: last.baseOffset, configuration: configuration.segmentSettings, writable: true, files: files, descriptors: descriptors)
            try active.loadEnd()
            segments[segments.count - 1] = active
        }
        let end = segments.last!.nextOffset
        let flushed = cleanShutdown ? end : min(max(recoveryPoint, 0), end)
        let log = PartitionLog(
            directory: directory, configuration: configuration, files: files, descriptors: descriptors, segments: segments,
            logStartOffset: min(max(start, segments.first!.baseOffset), end), flushed: flushed, damage: damage)
        // What recovery kept is synced now: it is the log from here on, and readers limited to the
        // flushed offset (and the recovery point) may then cover all of it.
        if damage == nil, flushed < end { try log.flush() }
        return (log, report)
    }

    /// Base offsets of the `.log` files in `directory`, sorted; removes leftovers of interrupted
    /// deletions and checkpoint writes.
    static func segmentBases(in directory: String, files: any FileSystem) throws(StorageError) -> [Int64] {
        var bases: [Int64] = []
        for name in try files.listDirectory(directory) {
            if (name.hasSuffix(SegmentFiles.deletedSuffix) || name.hasSuffix(".tmp")) && SegmentFiles.isSamsaFile(name) {
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
