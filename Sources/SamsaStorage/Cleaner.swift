import NIOCore
import SamsaRecords

/// What one cleaning pass did (Kafka's `CleanerStats`).
public struct CleaningPassStatistics: Sendable, Hashable {
    /// Bytes read: while building the offset map, and while copying.
    public var bytesRead: Int64 = 0
    /// Bytes written into cleaned segments.
    public var bytesWritten: Int64 = 0
    public var recordsRead: Int64 = 0
    public var recordsRetained: Int64 = 0
    /// Records without key found in the cleaned range (dropped, as Kafka's cleaner drops them).
    public var keylessRecordsDropped: Int64 = 0
    /// Tombstones removed because their delete horizon had passed.
    public var tombstonesRemoved: Int64 = 0
    /// Segments replaced, and the cleaned segments that replaced them.
    public var segmentsReplaced = 0
    public var segmentsWritten = 0
    /// Share of the offset map's slots used.
    public var mapUtilization: Double = 0
    public var seconds: Double = 0

    public init() {}
}

/// The result of `Cleaner.clean`: the new clean point (Kafka's first dirty offset) and what it did.
struct CleaningResult {
    var cleanPoint: Int64
    var statistics: CleaningPassStatistics
}

/// One cleaning pass over one log (Kafka's `Cleaner`): builds the offset map over the dirty section
/// (as much of it as the map holds), then rewrites every sealed segment up to what the map covers,
/// in groups of at most `segment.bytes`, keeping per key the record at the highest offset.
///
/// What is kept, Kafka's rules:
/// - a keyed record whose offset is the latest the map knows for its key (or past what the map
///   covers); a tombstone only until its batch's delete horizon (set to now + `delete.retention.ms`
///   when a clean first keeps it, KIP-534), a record without key never (Kafka refuses them at append
///   on compacted topics and its cleaner drops any found);
/// - the batch of each producer id that ends at its producer's last offset in the range (its
///   sequence number is what an idempotent producer is checked against), emptied if need be;
/// - the last batch of each cleaned segment, emptied if need be, so the segment still ends where the
///   next one begins (Kafka keeps the last batch of each cleaning round for the same reason);
/// - control batches whole: this layer keeps no transaction state to tell when a marker may go.
/// Transactional batches are treated as committed (aborted-transaction data is not dropped here).
///
/// Never the active segment; nothing at or past the first uncleanable offset (the active segment's
/// base, or the first segment holding a record younger than `min.compaction.lag.ms`) enters the map.
/// Owned by one cleaner thread; reads sealed segments without the writer lock.
final class Cleaner {
    private let map: OffsetMap
    /// Kafka's `log.cleaner.io.buffer.load.factor`: the map counts as full at this share.
    private let loadFactor = 0.9
    private let throttler: Throttler
    private let shouldStop: @Sendable () -> Bool

    init(memoryBytes: Int, throttler: Throttler, shouldStop: @escaping @Sendable () -> Bool) {
        self.map = OffsetMap(memoryBytes: memoryBytes)
        self.throttler = throttler
        self.shouldStop = shouldStop
    }

    /// The offset below which records may be cleaned: the active segment's base, or lower where
    /// `min.compaction.lag.ms` keeps younger segments out.
    static func firstUncleanableOffset(_ view: CleaningView, now: Int64) -> Int64 {
        var limit = view.activeBase
        let lag = view.configuration.minCompactionLagMilliseconds
        if lag > 0, let young = view.sealed.first(where: { $0.maxTimestamp > now - lag }) {
            limit = min(limit, young.baseOffset)
        }
        return limit
    }

    /// Cleans `log` from `firstDirty` on; nil when there is nothing to clean. Throws `.corrupt` for a
    /// damaged segment (nothing is replaced past the group it is in), `.closed` when stopped or the log
    /// changed under it.
    func clean(_ log: PartitionLog, firstDirty requested: Int64, now: Int64) throws(StorageError) -> CleaningResult? {
        let started = ContinuousClock.now
        guard let view = log.cleaningView() else { return nil }
        let firstDirty = max(requested, view.logStart)
        let uncleanable = Self.firstUncleanableOffset(view, now: now)
        guard firstDirty < uncleanable else { return nil }
        // Only durable records are cleaned: a swap is durable at once, so cleaning a sealed segment whose
        // last records a flush policy other than every-append has not synced yet could keep an older
        // value of a key (removing it) while a power cut takes the newer one. Kafka flushes a segment
        // when it rolls; here the cleaner syncs what it is about to clean.
        if log.flushedOffset < uncleanable { try log.flush() }
        var statistics = CleaningPassStatistics()
        var producers: [Int64: Int64] = [:]
        try buildOffsetMap(view, from: firstDirty, to: uncleanable, producers: &producers, statistics: &statistics)
        let end = map.latestOffset + 1
        guard end > firstDirty else {
            // Not one batch fit the map (Kafka: "Unable to build the offset map"): the partition is
            // uncleanable, said so, rather than retried without progress forever.
            if map.size > 0 {
                throw StorageError(
                    .invalidArgument, path: log.directory,
                    "a batch at offset \(firstDirty) or after holds more distinct keys than the cleaner's offset map takes (\(map.maximumCapacity) slots): raise log.cleaner.dedupe.buffer.size")
            }
            return nil
        }
        // Producers' last batches in the clean section too: one of them may be a producer's last.
        for segment in view.sealed where segment.baseOffset < firstDirty {
            try forEachBatch(of: segment, path: log.directory) { batch, _ throws(StorageError) in
                if batch.producerId >= 0 && batch.lastOffset < firstDirty { producers[batch.producerId] = max(producers[batch.producerId] ?? -1, batch.lastOffset) }
                return true
            }
        }
        let candidates = view.sealed.filter { $0.baseOffset < end }
        for group in Self.groupBySize(candidates, maxBytes: view.configuration.segmentBytes, maxIndexBytes: view.configuration.segment.maxIndexSize) {
            try cleanGroup(group, of: log, configuration: view.configuration, producers: producers, now: now, statistics: &statistics)
        }
        statistics.mapUtilization = map.utilization
        statistics.seconds = Double((ContinuousClock.now - started) / .milliseconds(1)) / 1000
        return CleaningResult(cleanPoint: end, statistics: statistics)
    }

    /// Kafka's `buildOffsetMap`: the latest offset of each key in the dirty section, until the map is
    /// full (then the pass covers only the batches mapped whole).
    private func buildOffsetMap(
        _ view: CleaningView, from start: Int64, to end: Int64, producers: inout [Int64: Int64], statistics: inout CleaningPassStatistics
    ) throws(StorageError) {
        let dirty = view.sealed.filter { $0.nextOffset > start && $0.baseOffset < end }
        // Every record has its own offset, so the dirty section holds at most `end - start` keys: a map
        // of that many slots over the load factor (plus slack for rounding) never fills before the
        // budget's would, and a small pass touches few pages.
        let mostSlots = Double(end - start) / loadFactor + 2
        map.clear(capacity: mostSlots >= Double(map.maximumCapacity) ? map.maximumCapacity : Int(mostSlots))
        let maxKeys = max(1, Int(Double(map.capacity) * loadFactor))
        for (index, segment) in dirty.enumerated() {
            let nextBase = index + 1 < dirty.count ? dirty[index + 1].baseOffset : end
            var full = false
            try forEachBatch(of: segment, path: segment.logPath, from: start) { batch, bytes throws(StorageError) in
                statistics.bytesRead += Int64(bytes)
                if batch.producerId >= 0 { producers[batch.producerId] = max(producers[batch.producerId] ?? -1, batch.lastOffset) }
                if !batch.isControlBatch {
                    do {
                        try batch.forEachRecord(limits: segment.configuration.limits) { record in
                            guard let key = record.key, record.offset >= start else { return }
                            if map.size >= maxKeys && map.get(KeyHash(key)) < 0 { throw MapFull() }
                            map.put(KeyHash(key), offset: record.offset)
                        }
                    } catch is MapFull {
                        full = true
                        return false
                    } catch {
                        throw StorageError(.corrupt, path: segment.logPath, "records of the batch at offset \(batch.baseOffset) cannot be read: \(error)")
                    }
                }
                if batch.lastOffset >= start { map.updateLatestOffset(batch.lastOffset) }
                return true
            }
            if full { break }
            // Gaps (earlier cleans) up to the next segment are covered too.
            map.updateLatestOffset(nextBase - 1)
        }
    }

    private struct MapFull: Error {}

    /// Rewrites one group of consecutive sealed segments into one cleaned segment and swaps it in.
    private func cleanGroup(
        _ group: [Segment], of log: PartitionLog, configuration: LogConfiguration, producers: [Int64: Int64], now: Int64,
        statistics: inout CleaningPassStatistics
    ) throws(StorageError) {
        let groupEnd = group[group.count - 1].nextOffset
        let writer = try CleanedSegmentWriter(
            directory: log.directory, baseOffset: group[0].baseOffset, configuration: configuration.segmentSettings, files: log.files)
        do throws(StorageError) {
            for segment in group {
                try forEachBatch(of: segment, path: segment.logPath) { batch, bytes throws(StorageError) in
                    statistics.bytesRead += Int64(bytes)
                    let kept = try filter(
                        batch, limits: segment.configuration.limits, path: segment.logPath, configuration: configuration, now: now,
                        keepEmpty: batch.nextOffset == groupEnd || (batch.producerId >= 0 && producers[batch.producerId] == batch.lastOffset),
                        statistics: &statistics)
                    if let kept {
                        try writer.append(kept, baseOffset: batch.baseOffset, lastOffset: batch.lastOffset, maxTimestamp: batch.maxTimestamp)
                        statistics.bytesWritten += Int64(kept.readableBytes)
                        throttler.throttle(kept.readableBytes)
                    }
                    return true
                }
            }
            try writer.finish()
            guard try log.replaceSegments(group, with: writer) else {
                writer.discard()
                throw StorageError(.closed, path: log.directory, "the log changed while it was cleaned; the clean is dropped")
            }
        } catch {
            writer.discard()
            throw error
        }
        statistics.segmentsReplaced += group.count
        statistics.segmentsWritten += 1
    }

    /// The bytes to write for `batch` (its own, a filtered copy, or an empty header), nil to drop it.
    private func filter(
        _ batch: RecordBatch, limits: RecordBatchLimits, path: String, configuration: LogConfiguration, now: Int64, keepEmpty: Bool,
        statistics: inout CleaningPassStatistics
    ) throws(StorageError) -> ByteBuffer? {
        if batch.isControlBatch { return batch.buffer }
        let horizon = CleanedBatch.deleteHorizon(of: batch)
        let tombstonesMayGo = horizon.map { now >= $0 } ?? false
        var kept: [RecordLocation] = []
        var section = ByteBuffer()
        var keptTombstone = false
        var total = 0
        let latestMapped = map.latestOffset
        do {
            try batch.forEachRecordLocation(limits: limits) { records, record in
                section = records
                total += 1
                let retain: Bool
                if record.offset > latestMapped {
                    retain = true
                } else if let key = record.key {
                    let latest = records.withUnsafeReadableBytes { raw in
                        record.offset >= map.get(KeyHash(UnsafeRawBufferPointer(rebasing: raw[key])))
                    }
                    retain = latest && (record.value != nil || !tombstonesMayGo)
                    if latest && record.value == nil && tombstonesMayGo { statistics.tombstonesRemoved += 1 }
                } else {
                    statistics.keylessRecordsDropped += 1
                    retain = false
                }
                if retain {
                    kept.append(record)
                    if record.value == nil { keptTombstone = true }
                }
            }
        } catch {
            throw StorageError(.corrupt, path: path, "records of the batch at offset \(batch.baseOffset) cannot be read: \(error)")
        }
        statistics.recordsRead += Int64(total)
        statistics.recordsRetained += Int64(kept.count)
        let setHorizon = keptTombstone && horizon == nil
        if kept.count == total && !setHorizon && total > 0 { return batch.buffer }
        if !kept.isEmpty {
            return try CleanedBatch.filtered(
                batch, section: section, records: kept, deleteHorizon: setHorizon ? now &+ configuration.deleteRetentionMilliseconds : nil)
        }
        return keepEmpty ? CleanedBatch.empty(batch) : nil
    }

    /// Calls `body` with each batch of a sealed segment (from the one holding `offset`) and its size,
    /// until it returns false. Throws `.corrupt` unless the segment is whole, valid batches (CRC
    /// checked) with increasing offsets; checks for a stop between batches.
    private func forEachBatch(
        of segment: Segment, path: String, from offset: Int64? = nil, _ body: (RecordBatch, Int) throws(StorageError) -> Bool
    ) throws(StorageError) {
        let end = segment.size
        var position = offset.map { $0 > segment.baseOffset ? segment.offsetIndex.lookup($0).position : 0 } ?? 0
        var window = ByteBuffer()
        var windowStart = position
        var next = Int64.min
        let limits = segment.configuration.limits
        while position < end {
            if shouldStop() { throw StorageError(.closed, path: segment.logPath, "the cleaner is stopping") }
            // The window holds `count` bytes from `position`, read anew (1 MiB at least) when it does not.
            func ensureWindow(_ count: Int) throws(StorageError) {
                guard position + count > windowStart + window.readableBytes else { return }
                window = try segment.readBytes(at: position, count: min(max(count, 1 << 20), end - position))
                windowStart = position
                throttler.throttle(window.readableBytes)
            }
            try ensureWindow(RecordBatchLayout.sizeProbeLength)
            let probed: Int?
            do {
                probed = try RecordBatch.size(ofBatchAtStartOf: window.getSlice(at: window.readerIndex + position - windowStart, length: windowStart + window.readableBytes - position)!, limits: limits)
            } catch {
                throw StorageError(.corrupt, path: segment.logPath, "no valid batch at position \(position): \(error)")
            }
            guard let size = probed, position + size <= end else {
                throw StorageError(.corrupt, path: segment.logPath, "the segment ends inside a batch at position \(position)")
            }
            try ensureWindow(size)
            let batch: RecordBatch
            do {
                batch = try RecordBatch(validating: window.getSlice(at: window.readerIndex + position - windowStart, length: size)!, limits: segment.configuration.limits)
            } catch {
                throw StorageError(.corrupt, path: segment.logPath, "invalid batch at position \(position): \(error)")
            }
            guard batch.baseOffset >= next, batch.lastOffset >= batch.baseOffset else {
                throw StorageError(.corrupt, path: segment.logPath, "batch offsets go back at position \(position)")
            }
            next = batch.nextOffset
            position += size
            if try !body(batch, size) { return }
        }
    }

    /// Kafka's `groupSegmentsBySize`: consecutive segments whose logs together fit `maxBytes` and whose
    /// indexes fit `maxIndexBytes`, and whose offsets fit an index's 32-bit relative offsets.
    static func groupBySize(_ segments: [Segment], maxBytes: Int, maxIndexBytes: Int) -> [[Segment]] {
        var groups: [[Segment]] = []
        var index = 0
        while index < segments.count {
            var group = [segments[index]]
            var bytes = segments[index].size
            var indexBytes = segments[index].offsetIndex.entryCount * 8
            var timeIndexBytes = segments[index].timeIndex.entryCount * 12
            index += 1
            while index < segments.count {
                let next = segments[index]
                let lastOffset = next.nextOffset - 1
                guard bytes + next.size <= maxBytes, indexBytes + next.offsetIndex.entryCount * 8 <= maxIndexBytes,
                    timeIndexBytes + next.timeIndex.entryCount * 12 <= maxIndexBytes, lastOffset - group[0].baseOffset <= Int64(Int32.max)
                else { break }
                group.append(next)
                bytes += next.size
                indexBytes += next.offsetIndex.entryCount * 8
                timeIndexBytes += next.timeIndex.entryCount * 12
                index += 1
            }
            groups.append(group)
        }
        return groups
    }
}
