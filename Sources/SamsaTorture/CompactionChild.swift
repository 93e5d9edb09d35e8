import Glibc
public import SamsaStorage

/// `samsa torture-child --compaction`: one life of a compaction SIGKILL round. Opens the directory like
/// an application (a `LogManager` recovering after the last kill, its cleaner running on background
/// threads with a short backoff and a small map), prints `start <log end>`, then appends keyed
/// batches from `CompactionBatches` (one appender, so the parent knows every batch's offsets),
/// rolling and flushing now and then, and prints `<base> <next>` for each batch its flush policy
/// acknowledged, until it is killed. The cleaner's clock moves with the appends so tombstones pass
/// their horizon within a life.
public enum CompactionChild {
    public static let partition = TopicPartition(topic: "compacted", partition: 0)

    /// The round's log and cleaner settings: the same in every life and in the parent.
    static func configuration(policy: FlushPolicy, seed: UInt64, round: Int) -> (LogConfiguration, LogCleanerConfiguration) {
        var random = TortureRandom(seed: seed, round: round, stream: 13)
        let configuration = LogConfiguration(
            segmentBytes: random.within(1024...16384), flushPolicy: policy,
            segment: SegmentConfiguration(indexIntervalBytes: [64, 512, 4096][random.below(3)], maxIndexSize: [1024, 1 << 16][random.below(2)]),
            fileDeleteDelayMilliseconds: 0, writeAheadBytes: [0, 4096][random.below(2)], cleanupPolicy: .compact,
            deleteRetentionMilliseconds: Int64(random.within(20...500)), minCleanableDirtyRatio: [0.0, 0.1, 0.5][random.below(3)])
        let cleaner = LogCleanerConfiguration(
            threads: random.within(1...2), dedupeBufferBytes: OffsetMapBudget.bytes(forKeys: [24, 100, 100_000][random.below(3)]) * 2,
            backoffMilliseconds: random.within(1...20))
        return (configuration, cleaner)
    }

    /// The batches of one life, in append order (the parent regenerates them).
    static func batches(seed: UInt64, round: Int, life: Int) -> CompactionBatches {
        CompactionBatches(random: TortureRandom(seed: seed, round: round, stream: 200 + UInt64(life)), keys: CompactionBatches.keySpace(seed: seed, round: round))
    }

    /// The cleaner clock of a life: later lives start later, so horizons set before a kill stay in the past.
    static func clockStart(life: Int) -> Int64 { 1_000 + Int64(life) * 100_000_000 }

    /// Runs one life; returns only if `batchCount` runs out (tests), else runs until killed.
    public static func run(directory: String, policy: FlushPolicy, seed: UInt64, round: Int, life: Int, batchCount: Int = 1_000_000) async throws {
        let (configuration, cleanerConfiguration) = configuration(policy: policy, seed: seed, round: round)
        let clock = ModelClock(start: clockStart(life: life))
        let (manager, _) = try LogManager.open(
            directory: directory, configuration: configuration, configurations: [partition: configuration], checkpointInterval: .milliseconds(50),
            cleaner: cleanerConfiguration, clock: { clock.now })
        let existing = manager.log(partition)
        let log = try existing ?? manager.createLog(partition, configuration: configuration)
        printLine("start \(log.logEndOffset)")
        var batches = batches(seed: seed, round: round, life: life)
        var random = TortureRandom(seed: seed, round: round, stream: 300 + UInt64(life))
        for _ in 0..<batchCount {
            let (batch, _) = try batches.next(clock: clock.now)
            let result = try await log.append(batch)
            printLine("\(result.baseOffset) \(result.nextOffset)")
            if random.chance(8) { try log.roll() }
            if random.chance(3) { try log.flush() }
            clock.advance(by: Int64(random.within(0...20)))
        }
        try manager.close()
    }
}
