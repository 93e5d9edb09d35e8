import Dispatch
import Glibc
public import NIOCore
public import SamsaRecords
import Synchronization

/// Where an appended batch landed.
public struct AppendResult: Sendable, Hashable {
    public var baseOffset: Int64
    public var lastOffset: Int64
    public var nextOffset: Int64 { lastOffset + 1 }
}

/// How far a reader may see.
public enum ReadLimit: Sendable, Hashable {
    /// Everything written to the file (the log end offset).
    case logEnd
    /// Only what a completed fsync covers (the recovery point).
    case flushed
    /// Only up to the high watermark (replicated logs).
    case highWatermark
}

/// The log of one partition: segments in offset order, the last one active.
///
/// Three positions are published atomically to readers, as Redpanda names them: written (the log end
/// offset), flushed (covered by a completed fdatasync: the recovery point) and the high watermark.
/// One writer at a time (appends are serialised by a lock held only for the write itself); any number
/// of readers, who never block the writer and never see bytes past the position they asked for.
/// Crash behaviour: see `open` and the README's "Durability guarantees"; nothing the flush policy
/// acknowledged is lost.
public final class PartitionLog: Sendable {
    struct State {
        var segments: [Segment]
        var logStartOffset: Int64
        var activeCreated: ContinuousClock.Instant
        var recordsSinceFlush = 0
        var closed = false
        var pendingDeletion: [String] = []
        /// The settings in force: read under the writer lock by appends, changed by `reconfigure`.
        var configuration: LogConfiguration
    }

    public let directory: String
    /// The settings in force (a topic's config change replaces them: `reconfigure`).
    public var configuration: LogConfiguration { state.withLock { $0.configuration } }
    /// Whether appends wait for an fdatasync (`.everyAppend`): read on every append's completion
    /// without the writer lock.
    private let syncsEveryAppend: Atomic<Bool>
    let files: any FileSystem
    let descriptors: DescriptorCache
    let state: Mutex<State>
    let publishedEnd: Atomic<Int64>
    private let publishedHighWatermark: Atomic<Int64>
    private let publishedStart: Atomic<Int64>
    /// The highest log start a checkpoint has made durable (see `durableLogStart`).
    private let checkpointedStart: Atomic<Int64>
    let groupCommit: GroupCommit
    /// Where `append` (async) writes: its pwrite blocks.
    private let appendQueue = BlockingQueue(label: "samsa.append")
    private let intervalTimer: Mutex<(any DispatchSourceTimer)?>
    /// Called after a truncation, before `truncate` returns (the log manager rewrites the recovery
    /// points: a stale, higher one would let recovery skip appends made below it).
    private let truncationObserver = Mutex<(@Sendable () throws(StorageError) -> Void)?>(nil)

    /// The offset the next appended record gets (Kafka's log end offset).
    public var logEndOffset: Int64 { publishedEnd.load(ordering: .acquiring) }
    /// Every offset below this is on disk (the recovery point).
    public var flushedOffset: Int64 { groupCommit.durableEnd }
    /// The first offset still retained.
    public var logStartOffset: Int64 { publishedStart.load(ordering: .acquiring) }
    /// The log start a crash cannot take back: what the last `LogManager` checkpoint wrote (at open,
    /// the start the log opened with). A follower reports this one to its leader, so a DeleteRecords
    /// answered once every replica reached its offset stays answered after any crash.
    public var durableLogStart: Int64 { min(checkpointedStart.load(ordering: .acquiring), logStartOffset) }
    /// Offsets below this are replicated (readers with `.highWatermark` see only these): 0 at open,
    /// then raised by the broker's partition (`raiseHighWatermark`), lowered only by a truncation.
    public var highWatermark: Int64 { publishedHighWatermark.load(ordering: .acquiring) }

    /// Damage found at open: reads stop at it and writes are refused (see `LogDamage`).
    public let damage: LogDamage?
    /// Opened with `openReadOnly`: every change is refused with `.readOnly`; `refresh` picks up what
    /// a writer in another process appended.
    public let isReadOnly: Bool

    /// The recovery point to checkpoint: the flushed offset, but never lowered below the one a damaged
    /// log was opened with (the next open must still see that durable records are missing).
    /// During a truncation, never above its target (see `truncate`).
    public var recoveryCheckpoint: Int64 {
        min(max(flushedOffset, damage?.recoveryPoint ?? 0), truncationFloor.load(ordering: .acquiring))
    }
    /// The offset a truncation under way cuts to (Int64.max when none is).
    private let truncationFloor = Atomic<Int64>(Int64.max)

    init(
        directory: String, configuration: LogConfiguration, files: any FileSystem, descriptors: DescriptorCache, segments: [Segment],
        logStartOffset: Int64, flushed: Int64, damage: LogDamage? = nil, readOnly: Bool = false
    ) {
        self.directory = directory
        self.damage = damage
        self.isReadOnly = readOnly
        self.files = files
        self.descriptors = descriptors
        let end = segments.last!.nextOffset
        state = Mutex(State(segments: segments, logStartOffset: logStartOffset, activeCreated: .now, configuration: configuration))
        syncsEveryAppend = Atomic(configuration.flushPolicy == .everyAppend)
        publishedEnd = Atomic(end)
        // Nothing is replicated until the partition's leader says so (`raiseHighWatermark`).
        publishedHighWatermark = Atomic(0)
        publishedStart = Atomic(logStartOffset)
        checkpointedStart = Atomic(logStartOffset)
        intervalTimer = Mutex(nil)
        let box = WeakLog()
        groupCommit = GroupCommit(label: directory, durableEnd: min(flushed, end)) { () throws(StorageError) -> GroupCommit.Coverage in
            guard let log = box.log else { return GroupCommit.Coverage(end: 0, generation: 0) }
            return try log.syncWritten()
        }
        box.log = self
        if !readOnly { restartIntervalFlushes() }
    }

    /// Puts new settings in force at once, as Kafka applies a topic's config change to its logs:
    /// the next append sees the segment size and age, the batch limit and the flush policy (a policy
    /// change restarts the interval flusher; appends already waiting for a sync still get it); the
    /// next retention pass sees the retention bounds. Segment file settings (index sizes, write-ahead)
    /// apply from the next segment on.
    public func reconfigure(_ configuration: LogConfiguration) {
        let previous = state.withLock { state in
            defer { state.configuration = configuration }
            return state.configuration.flushPolicy
        }
        syncsEveryAppend.store(configuration.flushPolicy == .everyAppend, ordering: .releasing)
        guard previous != configuration.flushPolicy, !isReadOnly else { return }
        restartIntervalFlushes()
        // Records already appended under a count or time bound are flushed now rather than waiting
        // for a bound that may no longer come.
        if flushedOffset < logEndOffset { groupCommit.flushSoon() }
    }

    deinit {
        intervalTimer.withLock { $0?.cancel() }
    }

    // MARK: - Appending

    /// Appends a batch: assigns its offsets from the log end, stamps `leaderEpoch` if given, writes it,
    /// and returns when the flush policy is satisfied (for `.everyAppend`, once an fdatasync that began
    /// after the write has returned). The write runs on the log's append queue, never on the caller's
    /// (cooperative) thread.
    @discardableResult
    public func append(_ batch: RecordBatch, leaderEpoch: Int32? = nil) async throws -> AppendResult {
        let result = try await appendQueue.run { try self.appendWithoutWaiting(batch, leaderEpoch: leaderEpoch) }
        try await waitForFlushPolicy(result)
        return result
    }

    /// Returns once the flush policy is satisfied for an append made with `appendWithoutWaiting`
    /// (at once unless the policy is `.everyAppend`). Lets a writer pipeline: append in order, wait
    /// for durability elsewhere.
    public func waitForFlushPolicy(_ result: AppendResult) async throws {
        if syncsEveryAppend.load(ordering: .acquiring) {
            try await groupCommit.waitUntilDurable(result.nextOffset)
        }
    }

    /// Calls `body` once the flush policy is satisfied for an append made with
    /// `appendWithoutWaiting` (nil), or flushing failed (the error): at once unless the policy is
    /// `.everyAppend`, else on the flusher's queue. For writers that track many appends without a
    /// task each.
    public func whenFlushPolicySatisfied(_ result: AppendResult, _ body: @escaping @Sendable (StorageError?) -> Void) {
        if syncsEveryAppend.load(ordering: .acquiring) {
            groupCommit.whenDurable(result.nextOffset, body)
        } else {
            body(nil)
        }
    }

    /// Writes a batch and returns without waiting for any flush.
    public func appendWithoutWaiting(_ batch: RecordBatch, leaderEpoch: Int32? = nil) throws(StorageError) -> AppendResult {
        try write(batch, at: .logEnd(leaderEpoch: leaderEpoch))
    }

    /// Where `write` puts a batch.
    enum Placement {
        /// At the log end, stamped with the epoch given (else its own): the leader's appends.
        case logEnd(leaderEpoch: Int32?)
        /// At its own base offset, at or past the log end, unchanged: a follower's (`appendAsFollower`).
        case ownOffsets
    }

    /// Writes `batch` where `placement` says, rolling first when the active segment cannot take it,
    /// and publishes the new log end. Does not wait for any flush.
    func write(_ batch: RecordBatch, at placement: Placement) throws(StorageError) -> AppendResult {
        if let failure = groupCommit.failure {
            throw StorageError(.closed, path: directory, errno: failure.errno, "the log refuses writes after a failed sync: \(failure.message)")
        }
        try refuseIfDamaged()
        let (result, flushNow) = try state.withLock { state throws(StorageError) -> (AppendResult, Bool) in
            guard !state.closed else { throw StorageError(.closed, path: directory, "the log is closed") }
            // What recovery and reads cannot take back is never written (they would cut it, and every
            // batch after it, as a torn tail).
            let limit = state.configuration.segment.limits.maxBatchSize
            guard batch.sizeInBytes <= limit else {
                throw StorageError(
                    .invalidArgument, path: directory, "a batch of \(batch.sizeInBytes) bytes exceeds the log's limit of \(limit) bytes")
            }
            let end = publishedEnd.load(ordering: .relaxed)
            let base: Int64
            let epoch: Int32
            switch placement {
            case .logEnd(let leaderEpoch):
                base = end
                epoch = leaderEpoch ?? batch.partitionLeaderEpoch
            case .ownOffsets:
                // Offsets are never reused: a batch below the log end is one this log holds already
                // (or a divergence, which the caller resolves by truncating first).
                guard batch.baseOffset >= end else {
                    throw StorageError(
                        .invalidArgument, path: directory, "a batch at offset \(batch.baseOffset) is below the log end \(end)")
                }
                base = batch.baseOffset
                epoch = batch.partitionLeaderEpoch
            }
            let result = AppendResult(baseOffset: base, lastOffset: base + Int64(batch.lastOffsetDelta))
            try rollIfNeeded(&state, adding: batch.sizeInBytes, offsets: result)
            // The segment writes the offset and epoch without copying or changing `batch` (for
            // `.ownOffsets` they are the batch's own, so the bytes on disk are the batch's bytes).
            try state.segments[state.segments.count - 1].append(batch, baseOffset: base, leaderEpoch: epoch)
            publishedEnd.store(result.nextOffset, ordering: .releasing)
            if case .messages(let count) = state.configuration.flushPolicy {
                state.recordsSinceFlush += Int(batch.recordCount)
                if state.recordsSinceFlush >= count {
                    state.recordsSinceFlush = 0
                    return (result, true)
                }
            }
            return (result, false)
        }
        if flushNow { groupCommit.flushSoon() }
        return result
    }

    /// Writes to a damaged log are refused: they would take offsets that records after the damage hold.
    /// (And every change to a read-only one.)
    func refuseIfDamaged() throws(StorageError) {
        if isReadOnly { throw StorageError(.readOnly, path: directory, "the log was opened read-only") }
        if let damage { throw StorageError(.corrupt, path: damage.path, "the log is \(damage)") }
    }

    /// Rolls before a batch taking `offsets` and `bytes` is written: on size, age or a full index (a
    /// new segment at the log end), and when its offsets do not fit the active segment's 32-bit
    /// relative offsets (a follower's batch far past a gap: Kafka rolls on that overflow too).
    private func rollIfNeeded(_ state: inout State, adding bytes: Int, offsets: AppendResult) throws(StorageError) {
        let active = state.segments[state.segments.count - 1]
        let end = publishedEnd.load(ordering: .relaxed)
        guard Segment.fitsRelativeOffsets(last: offsets.lastOffset, base: active.baseOffset) else {
            // At the log end when the batch fits a segment based there, so segments stay contiguous;
            // else at the batch's own base offset (Kafka's), leaving a gap between segments that
            // recovery recognises by the same rule (`SegmentGap`).
            try roll(&state, at: Segment.fitsRelativeOffsets(last: offsets.lastOffset, base: end) ? end : offsets.baseOffset)
            return
        }
        guard active.size > 0 else { return }
        let tooBig = active.size + bytes > state.configuration.segmentBytes
        let tooOld = state.configuration.segmentMilliseconds.map { state.activeCreated.duration(to: .now) >= .milliseconds($0) } ?? false
        if tooBig || tooOld || active.indexIsFull {
            try roll(&state, at: end)
        }
    }

    /// Seals the active segment and starts a new one at `base` (the log end, or past it for a
    /// follower's batch that fits no segment based there). No fsync here: the old segment's unflushed
    /// bytes are synced by the next flush, which covers every segment past the flushed offset.
    private func roll(_ state: inout State, at base: Int64) throws(StorageError) {
        // The new segment first: if it cannot be made (a full disk), the active one stays active and
        // writable, instead of sealed with nothing after it.
        let segment = try Segment(
            directory: directory, baseOffset: base, configuration: state.configuration.segmentSettings, writable: true, files: files, descriptors: descriptors)
        do throws(StorageError) {
            try state.segments[state.segments.count - 1].seal()
        } catch {
            // The old one stays active; the new, empty one goes (the next roll makes it again).
            if let paths = try? segment.markDeleted() { for path in paths { try? files.unlink(path) } }
            throw error
        }
        state.segments.append(segment)
        state.activeCreated = .now
    }

    /// Starts a new segment now (if the active one holds anything).
    public func roll() throws(StorageError) {
        try refuseIfDamaged()
        try state.withLock { state throws(StorageError) in
            guard state.segments[state.segments.count - 1].size > 0 else { return }
            try roll(&state, at: publishedEnd.load(ordering: .relaxed))
        }
    }

    // MARK: - Flushing

    /// Syncs every segment holding bytes past the flushed offset; returns the log end it covers and the
    /// truncation generation it belongs to, both read under the writer lock (a truncation holds it).
    private func syncWritten() throws(StorageError) -> GroupCommit.Coverage {
        let flushed = groupCommit.durableEnd
        let (coverage, unflushed, recent) = state.withLock { state in
            (
                GroupCommit.Coverage(end: publishedEnd.load(ordering: .acquiring), generation: groupCommit.generation),
                state.segments.filter { $0.nextOffset > flushed },
                state.segments.suffix(2)
            )
        }
        for segment in unflushed { try segment.flush() }
        // A write-ahead fill whose sync failed on the active (or just sealed) segment fails this flush
        // too, even when that segment had nothing of its own to sync: the disk lost a write.
        if let failure = recent.lazy.compactMap(\.writeAheadSyncFailure).first { throw failure }
        return coverage
    }

    /// Flushes everything written so far and waits for it.
    public func flush() throws(StorageError) {
        try refuseIfDamaged()
        try groupCommit.flushNow()
    }

    /// Replaces the interval flusher by one for the policy in force (none unless `.interval`). The
    /// policy is read under the timer's lock, so concurrent reconfigurations leave the last one's.
    private func restartIntervalFlushes() {
        let box = WeakLog()
        box.log = self
        intervalTimer.withLock { slot in
            slot?.cancel()
            slot = nil
            guard case .interval(let milliseconds) = state.withLock({ $0.configuration.flushPolicy }), milliseconds > 0 else { return }
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
            timer.schedule(deadline: .now() + .milliseconds(milliseconds), repeating: .milliseconds(milliseconds))
            timer.setEventHandler {
                guard let log = box.log, log.flushedOffset < log.logEndOffset else { return }
                log.groupCommit.flushSoon()
            }
            timer.resume()
            slot = timer
        }
    }

    // MARK: - Reading

    /// Whole batches from the one holding `offset`, up to `maxBytes`, never past `limit`. With
    /// `wholeFirstBatch` (Kafka's `minOneMessage`) the first visible batch comes however large it is,
    /// so a reader always makes progress; without it a first batch over `maxBytes` returns nothing
    /// (and `maxBytes` 0 reads nothing: no I/O). Nil when nothing is visible at `offset` yet or
    /// nothing fits. Offsets outside the log throw `offsetOutOfRange` whatever `maxBytes` is.
    public func read(from offset: Int64, maxBytes: Int, wholeFirstBatch: Bool = true, limit: ReadLimit = .logEnd) throws(StorageError) -> ByteBuffer? {
        let bytes = try readFromSegments(from: offset, limit: limit, nothingFits: maxBytes <= 0 && !wholeFirstBatch) { segment, visibleEnd throws(StorageError) in
            try segment.read(from: offset, maxBytes: maxBytes, wholeFirstBatch: wholeFirstBatch, visibleEnd: visibleEnd)
        }
        return bytes?.readableBytes == 0 ? nil : bytes
    }

    /// The batches `read` returns, as a range of one segment file to send without copying (sendfile).
    /// The slice holds its own duplicate of the file's descriptor: retention or a roll may delete or
    /// close the segment meanwhile, its bytes stay readable until the slice is closed (by its owner,
    /// or when the last reference goes). Same errors as `read`. A truncation (replication) cutting
    /// the range before it is sent shortens the file under it: see `SegmentSlice`.
    public func readSlice(from offset: Int64, maxBytes: Int, wholeFirstBatch: Bool = true, limit: ReadLimit = .logEnd) throws(StorageError) -> SegmentSlice? {
        let slice = try readFromSegments(from: offset, limit: limit, nothingFits: maxBytes <= 0 && !wholeFirstBatch) { segment, visibleEnd throws(StorageError) in
            try segment.slice(from: offset, maxBytes: maxBytes, wholeFirstBatch: wholeFirstBatch, visibleEnd: visibleEnd)
        }
        // An empty range comes with its descriptor closed.
        return slice?.length == 0 ? nil : slice
    }

    /// Checks `offset` against the log's bounds and `limit`, then (unless `nothingFits`) asks the
    /// segment holding it, or the next ones when it has nothing at or after `offset`, for its batches.
    private func readFromSegments<Result>(
        from offset: Int64, limit: ReadLimit, nothingFits: Bool = false, _ readSegment: (Segment, _ visibleEnd: Int64) throws(StorageError) -> Result?
    ) throws(StorageError) -> Result? {
        let visibleEnd = switch limit {
        case .logEnd: logEndOffset
        case .flushed: flushedOffset
        case .highWatermark: highWatermark
        }
        let (segments, start) = state.withLock { ($0.segments, $0.logStartOffset) }
        guard offset >= start, offset <= logEndOffset else {
            throw StorageError(.offsetOutOfRange, path: directory, "offset \(offset) is outside \(start)..<\(logEndOffset)")
        }
        if let damage, offset >= damage.offset {
            throw StorageError(.corrupt, path: damage.path, "cannot read offset \(offset): the log is \(damage)")
        }
        guard offset < visibleEnd, !nothingFits else { return nil }
        var index = Self.segmentIndex(holding: offset, in: segments)
        while index < segments.count {
            if let result = try readSegment(segments[index], visibleEnd) { return result }
            index += 1
        }
        return nil
    }

    /// The last segment whose base offset is at most `offset` (binary search).
    static func segmentIndex(holding offset: Int64, in segments: [Segment]) -> Int {
        var low = 0, high = segments.count - 1, found = 0
        while low <= high {
            let middle = (low + high) / 2
            if segments[middle].baseOffset <= offset {
                found = middle
                low = middle + 1
            } else {
                high = middle - 1
            }
        }
        return found
    }

    /// The first offset whose record has a timestamp at or after `timestamp`, or nil if none has.
    public func offset(forTimestamp timestamp: Int64) throws -> Int64? {
        let (segments, limits) = state.withLock { ($0.segments, $0.configuration.segment.limits) }
        for segment in segments where segment.maxTimestamp >= timestamp {
            let scanFrom = max(segment.timeIndex.lookup(timestamp), logStartOffset)
            var offset = scanFrom
            while let bytes = try segment.read(from: offset, maxBytes: 1 << 20) {
                var remaining = bytes
                while remaining.readableBytes > 0 {
                    let batch = try RecordBatch(validating: remaining, limits: limits)
                    remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                    offset = batch.nextOffset
                    guard batch.maxTimestamp >= timestamp else { continue }
                    var found: Int64?
                    try batch.forEachRecord(limits: limits) { record in
                        if found == nil && record.offset >= scanFrom && record.timestamp >= timestamp { found = record.offset }
                    }
                    if let found { return found }
                }
            }
        }
        return nil
    }

    // MARK: - High watermark, truncation, closing

    /// A checkpoint wrote `offset` as this log's start (raise-only).
    func logStartCheckpointed(_ offset: Int64) {
        var current = checkpointedStart.load(ordering: .relaxed)
        while current < offset {
            let (exchanged, original) = checkpointedStart.compareExchange(expected: current, desired: offset, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = original
        }
    }

    func publishLogStart(_ offset: Int64) {
        publishedStart.store(offset, ordering: .releasing)
    }

    /// Raises the high watermark (replication) to `offset`, never past the log end: true if it moved.
    /// It never falls here; only a truncation (`truncate`, `truncateFully`) lowers it, with the log end.
    @discardableResult
    public func raiseHighWatermark(to offset: Int64) -> Bool {
        let target = min(offset, logEndOffset)
        var current = publishedHighWatermark.load(ordering: .relaxed)
        while target > current {
            let (exchanged, original) = publishedHighWatermark.compareExchange(
                expected: current, desired: target, successOrdering: .releasing, failureOrdering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Removes every record at and after `offset` (replication truncates a follower to its leader's
    /// epoch boundary). Whole batches go; the log end becomes the start of the batch holding `offset`
    /// (in a log with gaps, a compacted one's or `appendAsFollower`'s: the end of the last batch
    /// before the one holding `offset` or the first after it).
    /// The cut is synced before this returns.
    ///
    /// Order, for crashes and failures: (1) the recovery point is checkpointed at or below `offset`
    /// first (the observer), so a crash part-way is recovered as a torn tail past it, never taken for
    /// damage below it; (2) the segment that stays last is reopened writable if sealed, cut and
    /// synced; (3) only then later segments are renamed `.deleted` and the new end is published. A
    /// failure in (1) changes nothing; a failure after (2) began leaves the files part-way, so the log
    /// then refuses writes like after a failed sync (reopening recovers it).
    public func truncate(to offset: Int64) throws(StorageError) {
        try refuseIfDamaged()
        if let failure = groupCommit.failure {
            throw StorageError(.closed, path: directory, errno: failure.errno, "the log refuses writes after a failed sync: \(failure.message)")
        }
        let needed = try state.withLock { state throws(StorageError) -> Bool in
            guard offset < publishedEnd.load(ordering: .relaxed) else { return false }
            guard offset >= state.logStartOffset else {
                throw StorageError(.offsetOutOfRange, path: directory, "cannot truncate to \(offset), before the log start \(state.logStartOffset)")
            }
            // The new end: the start of the batch holding `offset` (whole batches go), or, past a
            // gap, the end of the last batch that stays.
            let keep = state.segments.lastIndex { $0.baseOffset < offset } ?? 0
            let end = try state.segments[keep].endAfterTruncating(from: offset)
            truncationFloor.store(end, ordering: .releasing)
            return true
        }
        guard needed else { return }
        do throws(StorageError) {
            try truncationObserver.withLock { $0 }?()
        } catch {
            truncationFloor.store(Int64.max, ordering: .releasing)
            throw error  // nothing cut yet
        }
        do throws(StorageError) {
            try state.withLock { state throws(StorageError) in try cut(&state, at: offset) }
        } catch {
            // The floor stays: until a reopen recovers the log, checkpoints must not claim more.
            groupCommit.refuseWrites(after: error)
            throw error
        }
        truncationFloor.store(Int64.max, ordering: .releasing)
        deletePendingFiles()
        try truncationObserver.withLock { $0 }?()
    }

    /// Steps (2) and (3) of `truncate`, under the writer lock. The new end is published as soon as
    /// the file is cut, so reads always match the files (even when a later step fails and the log
    /// then refuses writes).
    private func cut(_ state: inout State, at offset: Int64) throws(StorageError) {
        let keep = state.segments.lastIndex { $0.baseOffset < offset } ?? 0
        var target = state.segments[keep]
        if target.sealed {
            // It becomes active again: reopen it writable, with preallocated indexes.
            target = try Segment(
                directory: directory, baseOffset: target.baseOffset, configuration: state.configuration.segmentSettings, writable: true, files: files,
                descriptors: descriptors)
            try target.loadEnd()
        }
        let end = try target.truncate(from: offset)
        let removed = Array(state.segments[(keep + 1)...])
        state.segments.removeSubrange((keep + 1)...)
        state.segments[keep] = target
        // Durability goes through its owner: the durable end drops to the cut, and a sync that
        // began before it cannot raise it again. First, so the flushed offset is never past the end.
        groupCommit.truncated(to: end)
        publishedEnd.store(end, ordering: .releasing)
        if publishedHighWatermark.load(ordering: .relaxed) > end { publishedHighWatermark.store(end, ordering: .releasing) }
        // Make the cut durable now: a truncated tail that a power cut brought back would pass
        // recovery as valid batches (replication truncates exactly such divergent tails).
        try target.flush()
        // Later segments go last. One whose rename fails stays on disk past the end; recovery
        // removes it (the recovery point was lowered first).
        var failure: StorageError?
        for segment in removed.reversed() {
            do throws(StorageError) {
                state.pendingDeletion += try segment.markDeleted()
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
    }

    /// Removes every record and restarts the log, empty, at `offset` (Kafka's `truncateFullyAndStartAt`):
    /// for a follower whose log end is below its leader's log start (retention there deleted what it
    /// still needed), which can then only continue from the leader's log start.
    ///
    /// Order, for crashes: the old segments are renamed `.deleted` first, then the empty segment at
    /// `offset` is made and the directory synced. A crash in between leaves a log with fewer records
    /// (reopened empty at the checkpointed log start), never one with a gap; the follower then finds
    /// itself behind again and repeats this.
    public func truncateFully(startingAt offset: Int64) throws(StorageError) {
        try refuseIfDamaged()
        if let failure = groupCommit.failure {
            throw StorageError(.closed, path: directory, errno: failure.errno, "the log refuses writes after a failed sync: \(failure.message)")
        }
        guard offset >= 0 else { throw StorageError(.invalidArgument, path: directory, "cannot restart the log at \(offset)") }
        do throws(StorageError) {
            try state.withLock { state throws(StorageError) in
                guard !state.closed else { throw StorageError(.closed, path: directory, "the log is closed") }
                while let oldest = state.segments.first {
                    state.pendingDeletion += try oldest.markDeleted()
                    state.segments.removeFirst()
                    // Readers never reach a segment that went (if a later rename fails and some stay).
                    if let next = state.segments.first {
                        state.logStartOffset = max(state.logStartOffset, next.baseOffset)
                        publishLogStart(state.logStartOffset)
                    }
                }
                let segment = try Segment(
                    directory: directory, baseOffset: offset, configuration: state.configuration.segmentSettings, writable: true, files: files,
                    descriptors: descriptors)
                state.segments = [segment]
                state.logStartOffset = offset
                state.activeCreated = .now
                state.recordsSinceFlush = 0
                // Syncs under way belong to the old log; waiters for its undurable offsets fail.
                groupCommit.truncated(to: min(groupCommit.durableEnd, offset))
                publishedEnd.store(offset, ordering: .releasing)
                publishLogStart(offset)
                publishedHighWatermark.store(offset, ordering: .releasing)
                try files.syncDirectory(directory)
            }
        } catch {
            // Part-way (some segments renamed, or no active segment): refuse writes until a reopen
            // recovers a consistent log.
            groupCommit.refuseWrites(after: error)
            throw error
        }
        deletePendingFiles()
        // The empty log at `offset` is durable (its directory is synced): the flushed offset becomes
        // `offset`, and the recovery point is rewritten.
        try groupCommit.flushNow()
        try truncationObserver.withLock { $0 }?()
    }

    func observeTruncation(_ observer: @escaping @Sendable () throws(StorageError) -> Void) {
        truncationObserver.withLock { $0 = observer }
    }

    /// Flushes, trims the active segment's indexes and refuses further appends.
    public func close() throws(StorageError) {
        intervalTimer.withLock { $0?.cancel() }
        let alreadyClosed = state.withLock { state -> Bool in
            defer { state.closed = true }
            return state.closed
        }
        guard !alreadyClosed, !isReadOnly else { return }
        if groupCommit.failure == nil { try groupCommit.flushNow() }
        try state.withLock { state throws(StorageError) in
            try state.segments[state.segments.count - 1].seal()
            for segment in state.segments { segment.forgetDescriptor() }
        }
        deletePendingFiles()
    }

    func deletePendingFiles() {
        let paths = state.withLock { state -> [String] in
            defer { state.pendingDeletion.removeAll() }
            return state.pendingDeletion
        }
        guard !paths.isEmpty else { return }
        // Unlinked off the caller's path after the delete delay, so reads under way finish.
        let files = self.files
        DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + .milliseconds(configuration.fileDeleteDelayMilliseconds)) {
            for path in paths { try? files.unlink(path) }
        }
    }

    /// Number of segments (for tests and tools).
    public var segmentCount: Int { state.withLock { $0.segments.count } }
    /// Base offsets of the segments, oldest first.
    public var segmentBaseOffsets: [Int64] { state.withLock { $0.segments.map(\.baseOffset) } }
    /// Bytes of all segments.
    public var sizeInBytes: Int { state.withLock { $0.segments.reduce(0) { $0 + $1.size } } }
}

/// Lets the flusher call back into its log without keeping it alive.
final class WeakLog: @unchecked Sendable {
    // @unchecked: set once, in the log's initialiser, before the flusher can run.
    weak var log: PartitionLog?
}
