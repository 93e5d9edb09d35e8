import Glibc
import SamsaRecords

/// What the cleaner needs to know about a log, read at one moment under the writer lock.
struct CleaningView {
    /// Every segment but the active one that may be cleaned, oldest first (sealed: their files do not
    /// change); not those past the high watermark when it bounds the cleaner.
    var sealed: [Segment]
    /// Where the uncleanable part begins: the active segment's base, or the first segment past the
    /// high watermark.
    var activeBase: Int64
    var activeSize: Int
    var activeAge: Duration
    var logStart: Int64
    var configuration: LogConfiguration
}

extension PartitionLog {
    /// The log as the cleaner sees it now; nil when it cannot be cleaned (closed, damaged, read-only).
    func cleaningView() -> CleaningView? {
        guard !isReadOnly, damage == nil else { return nil }
        let highWatermark = self.highWatermark
        return state.withLock { state -> CleaningView? in
            guard !state.closed, let active = state.segments.last else { return nil }
            var sealed = Array(state.segments.dropLast())
            var cleanableEnd = active.baseOffset
            // Segments past the high watermark count as uncleanable, as the active segment does.
            if state.configuration.cleansBelowHighWatermark, let first = sealed.firstIndex(where: { $0.nextOffset > highWatermark }) {
                cleanableEnd = sealed[first].baseOffset
                sealed.removeSubrange(first...)
            }
            return CleaningView(
                sealed: sealed, activeBase: cleanableEnd, activeSize: active.size,
                activeAge: state.activeCreated.duration(to: .now), logStart: state.logStartOffset, configuration: state.configuration)
        }
    }

    /// Rolls the active segment if it holds records and is older than `maxSegmentMilliseconds` (Kafka's
    /// time-based roll, here also for a log nobody appends to: otherwise its last records would wait in
    /// the never-cleaned active segment for good). Returns whether it rolled.
    @discardableResult
    public func rollIfOlder() throws(StorageError) -> Bool {
        guard let view = cleaningView(), let limit = view.configuration.maxSegmentMilliseconds, view.activeSize > 0,
            view.activeAge >= .milliseconds(limit)
        else { return false }
        try roll()
        return true
    }

    /// Swaps the cleaned segment `cleaned` in for `replaced` (consecutive sealed segments), Kafka's
    /// way; false (and nothing changed) when the log changed meanwhile (retention, truncation, close).
    ///
    /// Under the writer lock, so no truncation or retention can come between the commit and the swap:
    /// 1. the `.cleaned` files (already synced) are renamed `.swap`, indexes first, the `.log` last, and
    ///    the directory synced: the replacement is committed (an open after a crash finishes it);
    /// 2. the replaced segments are renamed `.deleted` (readers that hold them go on reading those
    ///    files: see `Segment.markDeleted`);
    /// 3. the `.swap` files take their final names, the `.log` last, and the new segment replaces the
    ///    old ones in the list readers take.
    /// A failure in 1 removes the `.swap`/`.cleaned` files and changes nothing. A failure after it
    /// leaves the old segments in the list (still readable, under whichever name they have) and the
    /// files for the next open to finish, and the log refuses writes until then; the error says so and
    /// the cleaner leaves the log alone.
    func replaceSegments(_ replaced: [Segment], with cleaned: CleanedSegmentWriter) throws(StorageError) -> Bool {
        let base = cleaned.baseOffset
        precondition(replaced.first?.baseOffset == base)
        let finalPaths = [SegmentFiles.index(directory, base), SegmentFiles.timeIndex(directory, base), SegmentFiles.log(directory, base)]
        let cleanedPaths = finalPaths.map { $0 + SegmentFiles.cleanedSuffix }
        let swapPaths = finalPaths.map { $0 + SegmentFiles.swapSuffix }
        let outcome = try state.withLock { state throws(StorageError) -> [String]? in
            guard !state.closed, let first = state.segments.firstIndex(where: { $0 === replaced[0] }),
                first + replaced.count < state.segments.count,
                zip(state.segments[first...], replaced).allSatisfy({ $0 === $1 })
            else { return nil }
            // 1. Commit.
            do throws(StorageError) {
                for (from, to) in zip(cleanedPaths, swapPaths) { try files.rename(from, to: to) }
                try files.syncDirectory(directory)
            } catch {
                for path in cleanedPaths + swapPaths { try? files.unlink(path) }
                throw error
            }
            // Past the commit point the next open finishes this swap from the `.swap` files, whatever
            // happened to the range since: a failure from here on makes the log refuse writes and
            // truncations until it is opened again (a truncation below the group's end and new appends
            // there would otherwise be overwritten by the stale cleaned group at that open).
            let segment: Segment
            var doomed: [String] = []
            do throws(StorageError) {
                // 2. The old segments go (their paths are deleted only once the swap is whole: until then
                // they may still be what readers are given), durably before the swap takes their place.
                for old in replaced { doomed += try old.markDeleted() }
                try files.syncDirectory(directory)
                // 3. The new segment takes the name.
                for (from, to) in zip(swapPaths, finalPaths) { try files.rename(from, to: to) }
                segment = try Segment(
                    directory: directory, baseOffset: base, configuration: state.configuration.segmentSettings, writable: false, files: files,
                    descriptors: descriptors)
                try segment.loadEnd()
            } catch {
                groupCommit.refuseWrites(after: error)
                throw error
            }
            state.segments.replaceSubrange(first..<(first + replaced.count), with: [segment])
            state.pendingDeletion += doomed
            return doomed
        }
        guard outcome != nil else { return false }
        deletePendingFiles()
        // The final names need not be durable now: a crash before they are leaves the `.swap` files,
        // and the next open finishes the swap again.
        try files.syncDirectory(directory)
        return true
    }

    /// At open, before the segments are listed: removes what an interrupted clean left (`.cleaned`
    /// files, and `.swap` indexes whose `.log` never became `.swap`), and finishes every committed swap
    /// (a `<base>.log.swap`): the segment files whose base offsets its batches cover are removed, then
    /// the `.swap` files take their final names. A `.log.swap` whose batches cannot be walked is
    /// refused (the open fails; nothing is deleted): it was synced before it was renamed, so damage
    /// there is not a crash's doing.
    static func finishInterruptedCleaning(in directory: String, files: any FileSystem) throws(StorageError) {
        let names = try files.listDirectory(directory)
        var changed = false
        var swaps: [Int64] = []
        for name in names where SegmentFiles.isSamsaFile(name) {
            if name.hasSuffix(SegmentFiles.cleanedSuffix) {
                try files.unlink("\(directory)/\(name)")
                changed = true
            } else if name.hasSuffix(SegmentFiles.swapSuffix), let base = segmentBase(ofFile: name) {
                if name == SegmentFiles.name(base) + SegmentFiles.logSuffix + SegmentFiles.swapSuffix {
                    swaps.append(base)
                } else if !names.contains(SegmentFiles.name(base) + SegmentFiles.logSuffix + SegmentFiles.swapSuffix) {
                    // An index whose `.log` never became `.swap`: the clean was not committed.
                    try files.unlink("\(directory)/\(name)")
                    changed = true
                }
            }
        }
        for base in swaps.sorted() {
            let swapLog = SegmentFiles.log(directory, base) + SegmentFiles.swapSuffix
            let end = try nextOffset(ofLogFile: swapLog, baseOffset: base, files: files)
            for name in try files.listDirectory(directory) where !name.hasSuffix(SegmentFiles.swapSuffix) && SegmentFiles.isSamsaFile(name) {
                guard let covered = segmentBase(ofFile: name), covered >= base, covered < end else { continue }
                try files.unlink("\(directory)/\(name)")
            }
            try files.syncDirectory(directory)
            for final in [SegmentFiles.index(directory, base), SegmentFiles.timeIndex(directory, base), SegmentFiles.log(directory, base)]
            where files.fileExists(final + SegmentFiles.swapSuffix) {
                try files.rename(final + SegmentFiles.swapSuffix, to: final)
            }
            changed = true
        }
        if changed { try files.syncDirectory(directory) }
    }

    /// The base offset in a segment file's name (`<20 digits>.<suffixes>`), nil for other names.
    private static func segmentBase(ofFile name: String) -> Int64? {
        let digits = name.prefix(20)
        guard digits.count == 20, digits.allSatisfy({ $0.isASCII && $0.isNumber }), name.dropFirst(20).first == "." else { return nil }
        return Int64(digits)
    }

    /// The offset after the last batch of a segment file, walking its batch headers (lengths and
    /// offsets only); throws `.corrupt` unless the file is whole batches with increasing offsets.
    private static func nextOffset(ofLogFile path: String, baseOffset: Int64, files: any FileSystem) throws(StorageError) -> Int64 {
        let fd = try files.open(path, flags: O_RDONLY | O_CLOEXEC, mode: 0)
        defer { files.close(fd) }
        let size = try files.fileSize(fd, path: path)
        var position = 0
        var next = baseOffset
        typealias L = RecordBatchLayout
        var header = [UInt8](repeating: 0, count: L.headerLength)
        while position < size {
            let read = try header.withUnsafeMutableBytes { raw in
                Result { () throws(StorageError) in try files.pread(fd, into: raw, at: position, path: path) }
            }.get()
            func field<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
                header.withUnsafeBytes { T(bigEndian: $0.loadUnaligned(fromByteOffset: at, as: T.self)) }
            }
            let length = Int(field(L.batchLengthOffset, Int32.self)) + L.lengthPrefixLength
            let batchBase = field(L.baseOffsetOffset, Int64.self)
            let lastDelta = field(L.lastOffsetDeltaOffset, Int32.self)
            guard read == L.headerLength, length >= L.headerLength, position + length <= size, batchBase >= next, lastDelta >= 0 else {
                throw StorageError(.corrupt, path: path, "the cleaned segment waiting to be swapped in is not whole batches at position \(position)")
            }
            next = batchBase + Int64(lastDelta) + 1
            position += length
        }
        return next
    }
}
