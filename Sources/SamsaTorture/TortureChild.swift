import Glibc
public import SamsaStorage
import SamsaRecords

/// The child process of a SIGKILL round (`samsa torture-child`): opens the log like an application
/// (a `LogManager`, recovering after the last kill), then appends random batches from 1 to 4
/// appenders, rolling and flushing now and then, and prints `<baseOffset> <lastOffset> <crc>` on
/// standard output for each batch as soon as its flush policy acknowledged it, until it is killed.
public enum TortureChild {
    public static let partition = TopicPartition(topic: "torture", partition: 0)

    /// The configuration of a round's log: the same in every life of the child.
    static func configuration(policy: FlushPolicy, seed: UInt64, round: Int) -> (LogConfiguration, checkpointMilliseconds: Int) {
        var random = TortureRandom(seed: seed, round: round, stream: 3)
        let configuration = LogConfiguration(
            segmentBytes: random.within(4096...65536), flushPolicy: policy,
            segment: SegmentConfiguration(indexIntervalBytes: [64, 512, 4096][random.below(3)], maxIndexSize: [1024, 1 << 16][random.below(2)]),
            fileDeleteDelayMilliseconds: 0, writeAheadBytes: [0, 4096, 16384][random.below(3)])
        return (configuration, random.within(10...500))
    }

    /// Runs one life of the child; returns only if `batches` runs out (tests), else until killed.
    public static func run(directory: String, policy: FlushPolicy, seed: UInt64, round: Int, life: Int, batches: Int = 1_000_000) async throws {
        let (configuration, checkpoint) = configuration(policy: policy, seed: seed, round: round)
        let (manager, _) = try LogManager.open(
            directory: directory, configuration: configuration, configurations: [partition: configuration], checkpointInterval: .milliseconds(checkpoint))
        let log = try manager.createLog(partition, configuration: configuration)
        var random = TortureRandom(seed: seed, round: round, stream: 100 + UInt64(life))
        let appenders = random.within(1...4)
        let perAppender = batches / appenders
        try await withThrowingTaskGroup(of: Void.self) { group in
            for appender in 0..<appenders {
                let appenderSeed = random.next()
                group.addTask {
                    var own = TortureRandom(seed: appenderSeed)
                    for _ in 0..<perAppender {
                        let (batch, _) = try RandomBatch.make(&own, timestamp: Int64(appender) * 1_000_000_000, maxRecords: 12)
                        let result = try await log.append(batch)
                        printLine("\(result.baseOffset) \(result.lastOffset) \(batch.crc)")
                        if own.chance(2) { try log.roll() }
                        if own.chance(2) { try log.flush() }
                    }
                }
            }
            try await group.waitForAll()
        }
        try manager.close()
    }
}
