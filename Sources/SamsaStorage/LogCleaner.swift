import Dispatch
import NIOCore
import SamsaRecords
import Synchronization

/// Settings of the log cleaner (Kafka's broker-level `log.cleaner.*` names in the comments).
public struct LogCleanerConfiguration: Sendable, Hashable {
    /// Run the cleaner (`log.cleaner.enable`). Off, `LogCleaner.cleanNow` still cleans on request.
    public var enabled: Bool
    /// Cleaner threads (`log.cleaner.threads`); each cleans one log at a time.
    public var threads: Int
    /// Memory for the offset maps of all threads together (`log.cleaner.dedupe.buffer.size`), allocated
    /// by a thread when it first cleans.
    public var dedupeBufferBytes: Int
    /// Read and write rate of all threads together (`log.cleaner.io.max.bytes.per.second`); nil: no limit.
    public var ioMaxBytesPerSecond: Int64?
    /// Pause of a thread that found nothing to clean (`log.cleaner.backoff.ms`).
    public var backoffMilliseconds: Int

    public init(
        enabled: Bool = true, threads: Int = 1, dedupeBufferBytes: Int = 128 << 20, ioMaxBytesPerSecond: Int64? = nil,
        backoffMilliseconds: Int = 15_000
    ) {
        self.enabled = enabled
        self.threads = max(1, threads)
        self.dedupeBufferBytes = dedupeBufferBytes
        self.ioMaxBytesPerSecond = ioMaxBytesPerSecond
        self.backoffMilliseconds = backoffMilliseconds
    }
}

/// A compacted partition as the cleaner last saw it.
public struct PartitionCleaningState: Sendable, Hashable {
    /// Share of the log (bytes of sealed segments) not cleaned yet, from 0 to 1.
    public var dirtyRatio: Double
    /// The first offset not cleaned yet (Kafka's first dirty offset; the cleaner checkpoint).
    public var cleanPoint: Int64
    /// Wall-clock milliseconds of the last completed clean, nil before the first one (in this process).
    public var lastCleanMilliseconds: Int64?
}

/// What the cleaner has done since it started, for metrics (Kafka's cleaner metrics).
public struct LogCleanerStatistics: Sendable, Hashable {
    /// Bytes read and written by cleaning passes.
    public var bytesRead: Int64 = 0
    public var bytesWritten: Int64 = 0
    /// Time spent in cleaning passes, in seconds.
    public var cleaningSeconds: Double = 0
    /// Completed passes.
    public var passes = 0
    /// Largest dirty ratio of a compacted log at the last look (Kafka's `max-dirty-percent` / 100).
    public var maxDirtyRatio: Double = 0
    /// Logs the cleaner gave up on (a damaged segment, an I/O error), with the reason. They are still
    /// served and written; only cleaning stops until the next open.
    public var uncleanablePartitions: [TopicPartition: String] = [:]
    /// Every compacted log the cleaner has looked at.
    public var partitions: [TopicPartition: PartitionCleaningState] = [:]
    /// The last pass's own figures.
    public var lastPass: CleaningPassStatistics?
}

/// Compacts the logs whose cleanup policy includes `compact` (Kafka's `LogCleaner` with its
/// `LogCleanerManager`): `threads` workers, each on its own dispatch queue (never the cooperative
/// pool), repeatedly take the log with the highest dirty ratio at or above its
/// `min.cleanable.dirty.ratio` (or holding records older than `max.compaction.lag.ms`) and clean it
/// with a `Cleaner`. A worker that finds nothing waits `backoffMilliseconds`.
///
/// Each log's clean point is kept in `cleaner-offset-checkpoint` in the data directory, written
/// atomically through the `FileSystem` after each pass. It is only a hint: a lost or stale one costs
/// a re-clean, never a record (a clean point past the log end, after a truncation, restarts at the
/// log start). A damaged checkpoint is ignored, as Kafka does.
///
/// Locks are held only to read or update the cleaner's bookkeeping, never across I/O.
public final class LogCleaner: Sendable {
    public static let checkpointFile = "cleaner-offset-checkpoint"

    public let configuration: LogCleanerConfiguration
    private let directory: String
    private let files: any FileSystem
    /// Wall-clock milliseconds (injectable: tests move tombstones past their delete horizon).
    private let clock: @Sendable () -> Int64
    private let throttler: Throttler
    private let logs = Mutex<(@Sendable () -> [TopicPartition: PartitionLog])?>(nil)

    private struct State {
        var cleanPoints: [TopicPartition: Int64] = [:]
        var inProgress: Set<TopicPartition> = []
        var statistics = LogCleanerStatistics()
        var running = false
    }

    private let state: Mutex<State>
    private let stopping = Atomic<Bool>(false)
    private let checkpointLock = Mutex(())
    private let workers: [Worker]

    init(directory: String, files: any FileSystem, configuration: LogCleanerConfiguration, clock: @escaping @Sendable () -> Int64) {
        self.directory = directory
        self.files = files
        self.configuration = configuration
        self.clock = clock
        self.throttler = Throttler(bytesPerSecond: configuration.ioMaxBytesPerSecond)
        let points = (try? OffsetCheckpoint.read("\(directory)/\(Self.checkpointFile)", files: files)) ?? [:]
        state = Mutex(State(cleanPoints: points))
        workers = (0..<configuration.threads).map { Worker(index: $0) }
    }

    /// The logs to clean come from `source` (the log manager's).
    func attach(_ source: @escaping @Sendable () -> [TopicPartition: PartitionLog]) {
        logs.withLock { $0 = source }
    }

    /// Starts the worker threads (once; no effect when `configuration.enabled` is false).
    public func start() {
        guard configuration.enabled else { return }
        let start = state.withLock { state -> Bool in
            defer { state.running = true }
            return !state.running
        }
        guard start else { return }
        stopping.store(false, ordering: .releasing)
        for worker in workers { schedule(worker, after: 0) }
    }

    /// Stops the workers and waits for passes under way, which abort at the next batch (their
    /// `.cleaned` files are removed; nothing already swapped in is undone).
    public func stop() {
        state.withLock { $0.running = false }
        stopping.store(true, ordering: .releasing)
        for worker in workers { worker.queue.sync {} }
    }

    /// Cleaning statistics so far.
    public var statistics: LogCleanerStatistics { state.withLock { $0.statistics } }

    /// Runs passes on the caller's thread (blocking: not on an event loop or the cooperative pool)
    /// until no log is due or `maxPasses` ran; returns the passes run. For tests and tools.
    @discardableResult
    public func cleanNow(maxPasses: Int = .max) -> Int {
        var passes = 0
        while passes < maxPasses, workers[0].queue.sync(execute: { cleanOnce(workers[0], force: false) }) { passes += 1 }
        return passes
    }

    /// Cleans `partition` now if it has anything cleanable, whatever its dirty ratio (blocking).
    /// Returns whether a pass ran.
    @discardableResult
    public func clean(_ partition: TopicPartition) -> Bool {
        workers[0].queue.sync { cleanOnce(workers[0], force: true, only: partition) }
    }

    /// A log was truncated: its clean point may not stay past its end.
    func truncated(_ partition: TopicPartition, logEnd: Int64) {
        let lowered = state.withLock { state -> Bool in
            guard let point = state.cleanPoints[partition], point > logEnd else { return false }
            state.cleanPoints[partition] = logEnd
            return true
        }
        if lowered { try? writeCheckpoint() }
    }

    /// A log was deleted: its clean point and figures go.
    func forget(_ partition: TopicPartition) {
        state.withLock { state in
            state.cleanPoints.removeValue(forKey: partition)
            state.statistics.partitions.removeValue(forKey: partition)
            state.statistics.uncleanablePartitions.removeValue(forKey: partition)
        }
    }

    // MARK: - Workers

    /// One cleaner thread: a serial queue and the `Cleaner` (with its offset map) it owns.
    private final class Worker: @unchecked Sendable {
        // @unchecked: `cleaner` is touched only on `queue`.
        let queue: DispatchQueue
        var cleaner: Cleaner?

        init(index: Int) {
            queue = DispatchQueue(label: "samsa.log-cleaner-\(index)", qos: .utility)
        }
    }

    private func schedule(_ worker: Worker, after milliseconds: Int) {
        worker.queue.asyncAfter(deadline: .now() + .milliseconds(milliseconds)) { [weak self] in
            guard let self, !self.stopping.load(ordering: .acquiring) else { return }
            let worked = self.cleanOnce(worker, force: false)
            guard !self.stopping.load(ordering: .acquiring) else { return }
            self.schedule(worker, after: worked ? 0 : self.configuration.backoffMilliseconds)
        }
    }

    /// Picks the dirtiest due log and cleans it; true when a pass ran.
    private func cleanOnce(_ worker: Worker, force: Bool, only: TopicPartition? = nil) -> Bool {
        let now = clock()
        guard let (partition, log, firstDirty) = pick(now: now, force: force, only: only) else { return false }
        defer { state.withLock { _ = $0.inProgress.remove(partition) } }
        if worker.cleaner == nil {
            worker.cleaner = Cleaner(
                memoryBytes: configuration.dedupeBufferBytes / configuration.threads, throttler: throttler,
                shouldStop: { [weak self] in self?.stopping.load(ordering: .acquiring) ?? true })
        }
        // A truncation (a follower's, an unclean shutdown's recovery) bumps this: a pass it cut short failed
        // for that, not for damage.
        let truncations = log.groupCommit.generation
        do throws(StorageError) {
            guard let result = try worker.cleaner!.clean(log, firstDirty: firstDirty, now: now) else { return false }
            state.withLock { state in
                state.cleanPoints[partition] = result.cleanPoint
                state.statistics.bytesRead += result.statistics.bytesRead
                state.statistics.bytesWritten += result.statistics.bytesWritten
                state.statistics.cleaningSeconds += result.statistics.seconds
                state.statistics.passes += 1
                state.statistics.lastPass = result.statistics
                state.statistics.partitions[partition, default: PartitionCleaningState(dirtyRatio: 0, cleanPoint: 0)].cleanPoint = result.cleanPoint
                state.statistics.partitions[partition]?.lastCleanMilliseconds = clock()
                state.statistics.partitions[partition]?.dirtyRatio = Self.dirtyRatio(log.cleaningView(), cleanPoint: result.cleanPoint, now: now).ratio
            }
            // A failed write keeps the clean point in memory; the next pass writes it again.
            try? writeCheckpoint()
            return true
        } catch where error.code == .closed {
            return false  // stopping, or the log changed under the pass: the next pass starts afresh
        } catch where error.code == .io || error.code == .noSpace || log.groupCommit.generation != truncations {
            // Ordinary events, not damage: a segment retention or a truncation removed under the pass, a
            // full disk. The next pass (after the backoff) starts afresh.
            return false
        } catch {
            // Damage: given up on until the next open, unless the partition was deleted meanwhile (a
            // topic re-created under its name starts clean).
            let current = logs.withLock { $0 }?()[partition]
            if current === log { state.withLock { $0.statistics.uncleanablePartitions[partition] = error.description } }
            return true
        }
    }

    /// Kafka's `grabFilthiestCompactedLog`: rolls compacted logs whose active segment is older than
    /// their roll age, then takes the due log with the highest dirty ratio and marks it in progress.
    private func pick(now: Int64, force: Bool, only: TopicPartition?) -> (TopicPartition, PartitionLog, Int64)? {
        let all = logs.withLock { $0 }?() ?? [:]
        let (points, busy, uncleanable) = state.withLock { ($0.cleanPoints, $0.inProgress, $0.statistics.uncleanablePartitions) }
        var best: (partition: TopicPartition, log: PartitionLog, firstDirty: Int64, ratio: Double)?
        var ratios: [TopicPartition: Double] = [:]
        var maxRatio = 0.0
        for (partition, log) in all where only == nil || only == partition {
            guard log.configuration.cleanupPolicy.compacts, uncleanable[partition] == nil else { continue }
            _ = try? log.rollIfOlder()
            guard let view = log.cleaningView() else { continue }
            var firstDirty = points[partition] ?? view.logStart
            if firstDirty < view.logStart || firstDirty > log.logEndOffset { firstDirty = view.logStart }
            let (ratio, cleanableBytes) = Self.dirtyRatio(view, cleanPoint: firstDirty, now: now)
            ratios[partition] = ratio
            maxRatio = max(maxRatio, ratio)
            guard !busy.contains(partition), cleanableBytes > 0 else { continue }
            let due = force || ratio >= view.configuration.minCleanableDirtyRatio || pastMaxLag(view, firstDirty: firstDirty, now: now)
            if due, ratio > best?.ratio ?? -1 { best = (partition, log, firstDirty, ratio) }
        }
        return state.withLock { state -> (TopicPartition, PartitionLog, Int64)? in
            state.statistics.maxDirtyRatio = maxRatio
            for (partition, ratio) in ratios {
                state.statistics.partitions[partition, default: PartitionCleaningState(dirtyRatio: 0, cleanPoint: 0)].dirtyRatio = ratio
                // The clean point now, not the snapshot above: another worker may have moved it since.
                state.statistics.partitions[partition]?.cleanPoint = state.cleanPoints[partition] ?? 0
            }
            guard let best, !state.inProgress.contains(best.partition) else { return nil }
            state.inProgress.insert(best.partition)
            return (best.partition, best.log, best.firstDirty)
        }
    }

    /// Kafka's dirty ratio: bytes of sealed segments past the clean point (below the first uncleanable
    /// offset) over bytes of sealed segments from the log start to there.
    static func dirtyRatio(_ view: CleaningView?, cleanPoint: Int64, now: Int64) -> (ratio: Double, cleanableBytes: Int) {
        guard let view else { return (0, 0) }
        let uncleanable = Cleaner.firstUncleanableOffset(view, now: now)
        var clean = 0, dirty = 0
        for segment in view.sealed where segment.baseOffset < uncleanable {
            if segment.nextOffset <= cleanPoint { clean += segment.size } else { dirty += segment.size }
        }
        return (clean + dirty == 0 ? 0 : Double(dirty) / Double(clean + dirty), dirty)
    }

    /// True when the oldest dirty record (the first batch of the first dirty segment) is older than
    /// `max.compaction.lag.ms`.
    private func pastMaxLag(_ view: CleaningView, firstDirty: Int64, now: Int64) -> Bool {
        let lag = view.configuration.maxCompactionLagMilliseconds
        guard lag < .max, let segment = view.sealed.first(where: { $0.nextOffset > firstDirty }) else { return false }
        guard let header = try? segment.readBytes(at: 0, count: RecordBatchLayout.headerLength),
            let firstTimestamp = header.getInteger(at: header.readerIndex + RecordBatchLayout.maxTimestampOffset, as: Int64.self)
        else { return false }
        return now - firstTimestamp > lag
    }

    private func writeCheckpoint() throws(StorageError) {
        try checkpointLock.withLock { _ in
            Result { () throws(StorageError) in
                // Read under the lock: of two writers, the later one writes the later points.
                let points = state.withLock { $0.cleanPoints }
                try OffsetCheckpoint.write(points, to: "\(directory)/\(Self.checkpointFile)", files: files)
            }
        }.get()
    }
}
