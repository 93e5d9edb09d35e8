import Synchronization
import SamsaRecords
import SamsaStorage

/// The clock a compaction round's cleaner reads (tombstone horizons): moved only by the round.
final class ModelClock: Sendable {
    private let milliseconds: Atomic<Int64>
    init(start: Int64 = 1_000) { milliseconds = Atomic(start) }
    var now: Int64 { milliseconds.load(ordering: .acquiring) }
    func advance(by delta: Int64) { milliseconds.add(delta, ordering: .acquiringAndReleasing) }
}

/// A compacted partition under a `LogManager` on `FaultInjectingFileSystem`, and the model of what it
/// must show. Steps: keyed appends with tombstones, rolls, cleaning passes (the cleaner of the manager,
/// run on request so a round replays), clock ticks (tombstones pass their horizon), flushes, close and
/// reopen.
struct CompactionWorkload {
    enum Step: CustomStringConvertible {
        case append, roll, clean, tick, flush, cleanReopen

        static func pick(_ random: inout TortureRandom) -> Step {
            switch random.below(100) {
            case 0..<45: .append
            case 45..<58: .roll
            case 58..<75: .clean
            case 75..<85: .tick
            case 85..<92: .flush
            default: .cleanReopen
            }
        }

        var description: String {
            switch self {
            case .append: "append"
            case .roll: "roll"
            case .clean: "clean"
            case .tick: "clock tick"
            case .flush: "flush"
            case .cleanReopen: "close and reopen"
            }
        }
    }

    static let partition = TopicPartition(topic: "compacted", partition: 0)

    let directory: String
    let configuration: LogConfiguration
    let cleaner: LogCleanerConfiguration
    /// Whether an append's return acknowledges it for the crash the round ends with (a power cut needs
    /// a sync: every-append; a process crash only the write).
    let acknowledgeOnAppend: Bool
    var files: FaultInjectingFileSystem
    var manager: LogManager?
    var log: PartitionLog?
    var model = CompactionModel()
    var random: TortureRandom
    var batches: CompactionBatches
    let clock = ModelClock()
    /// Batches whose append failed after writing (they may be on disk).
    var maybeWritten: [(base: Int64, records: [CompactionRecord])] = []

    /// A random compacted configuration: small segments (many to clean and group), dense or sparse
    /// indexes, a delete retention a few ticks long; a map of a few keys to a few hundred (several
    /// passes per clean when small).
    static func randomConfiguration(_ policy: FlushPolicy, _ random: inout TortureRandom) -> (LogConfiguration, LogCleanerConfiguration) {
        let configuration = LogConfiguration(
            segmentBytes: random.within(600...6000), flushPolicy: policy,
            segment: SegmentConfiguration(indexIntervalBytes: [64, 512, 4096][random.below(3)], maxIndexSize: [1024, 1 << 16][random.below(2)]),
            fileDeleteDelayMilliseconds: 0, writeAheadBytes: [0, 0, 4096][random.below(3)], cleanupPolicy: .compact,
            deleteRetentionMilliseconds: Int64(random.within(50...2000)), minCleanableDirtyRatio: 0.0)
        let cleaner = LogCleanerConfiguration(enabled: false, dedupeBufferBytes: OffsetMapBudget.bytes(forKeys: [12, 30, 100, 100_000][random.below(4)]))
        return (configuration, cleaner)
    }

    init(
        directory: String, policy: FlushPolicy, acknowledgeOnAppend: Bool, files: FaultInjectingFileSystem, random: TortureRandom, keys: Int
    ) throws(StorageError) {
        self.directory = directory
        self.random = random
        (configuration, cleaner) = Self.randomConfiguration(policy, &self.random)
        self.acknowledgeOnAppend = acknowledgeOnAppend
        self.files = files
        batches = CompactionBatches(random: TortureRandom(seed: self.random.next()), keys: keys)
        try open()
    }

    /// Opens (recovering) the manager and the partition.
    mutating func open() throws(StorageError) {
        let clock = self.clock
        let (manager, _) = try LogManager.open(
            directory: directory, configuration: configuration, configurations: [Self.partition: configuration], checkpointInterval: nil,
            files: files, cleaner: cleaner, clock: { clock.now })
        self.manager = manager
        if let existing = manager.log(Self.partition) {
            log = existing
        } else {
            log = try manager.createLog(Self.partition, configuration: configuration)
        }
    }

    /// The manager's log, reopened if a previous reopen failed (the process would start again).
    private mutating func openLog() throws -> PartitionLog {
        if let log { return log }
        try open()
        try adoptMaybeWritten()
        model.acknowledge(through: log!.logEndOffset)
        return log!
    }

    /// After a reopen, batches of failed appends may be back: the model takes them, and nothing else.
    mutating func adoptMaybeWritten() throws(TortureViolation) {
        guard let log else { return }
        let end = log.logEndOffset
        for batch in maybeWritten where batch.base + Int64(batch.records.count) <= end && model.written[batch.base] == nil {
            model.wrote(batch.records, at: batch.base)
        }
        maybeWritten.removeAll()
        model.truncate(to: end)
    }

    /// Checks the open log against the model; returns the records compared.
    mutating func check(_ context: String, verifyFiles: Bool = true) throws(TortureViolation) -> Int {
        guard let log else { return 0 }
        if let uncleanable = manager?.cleaner.statistics.uncleanablePartitions[Self.partition], !files.powerIsOff, files.faultsFired == 0 {
            throw TortureViolation("\(context): the cleaner gave up on the log with nothing failing: \(uncleanable)")
        }
        return try model.check(
            log, context, now: clock.now, deleteRetention: configuration.deleteRetentionMilliseconds, random: &random, verifyFiles: verifyFiles)
    }

    /// Passes of the cleaner until nothing is left to clean (at most `maxPasses`).
    func clean(maxPasses: Int = 8) {
        guard let manager else { return }
        for _ in 0..<maxPasses where manager.cleaner.clean(Self.partition) {}
    }

    /// Runs one step; throws a `TortureViolation` when the log broke a promise, another error when a
    /// storage call failed.
    mutating func perform(_ step: Step) async throws {
        let log = try openLog()
        switch step {
        case .append:
            let (batch, records) = try batches.next(clock: clock.now)
            let base = log.logEndOffset
            let result: AppendResult
            do {
                result = try log.appendWithoutWaiting(batch)
            } catch {
                maybeWritten.append((base, records))
                throw error
            }
            try require(result.baseOffset == base, "append got offset \(result.baseOffset), the log end was \(base)")
            try require(result.baseOffset >= model.acknowledgedEnd, "append got offset \(result.baseOffset) below the acknowledged end \(model.acknowledgedEnd): offsets reused")
            model.wrote(records, at: result.baseOffset)
            try await log.waitForFlushPolicy(result)
            if acknowledgeOnAppend { model.acknowledge(through: result.nextOffset) }
        case .roll:
            try log.roll()
        case .clean:
            clean()
        case .tick:
            clock.advance(by: Int64(random.within(0...Int(configuration.deleteRetentionMilliseconds) * 3 / 2)))
        case .flush:
            try log.flush()
            model.acknowledge(through: log.logEndOffset)
        case .cleanReopen:
            let manager = self.manager
            self.manager = nil
            self.log = nil
            try manager?.close()
            model.acknowledge(through: log.logEndOffset)
            _ = try openLog()
        }
    }
}

/// The dedupe buffer that holds `keys` keys (the map counts as full at 90 %).
enum OffsetMapBudget {
    static func bytes(forKeys keys: Int) -> Int { (keys * 10 / 9 + 1) * 24 }
}
