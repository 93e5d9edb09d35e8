import Glibc
public import SamsaStorage

/// A compaction SIGKILL round: `samsa torture-child --compaction` appends keyed batches while its
/// cleaner threads clean and swap in the background, and is killed after a random number of
/// acknowledgements (none: while it recovers, maybe finishing a swap). One to three lives in the
/// same directory. After each kill the parent recovers the directory and checks it against the model
/// (`CompactionModel`, no tombstone timing: the child's clock is its own): it regenerates every batch
/// the child appended, from the same seed, so each record read must be the one written at its
/// offset, each key's latest acknowledged value must be there (or a later record of the key), no
/// deleted key may come back, the next life must start at the recovered end (offsets never reused).
public struct CompactionSigkillRound: Sendable {
    public var policy: FlushPolicy
    public var seed: UInt64
    public var round: Int
    public var directory: String
    public var executable: String

    public init(policy: FlushPolicy, seed: UInt64, round: Int, directory: String, executable: String) {
        self.policy = policy
        self.seed = seed
        self.round = round
        self.directory = directory
        self.executable = executable
    }

    public func run() throws -> RoundTally {
        var random = TortureRandom(seed: seed, round: round, stream: 14)
        let (configuration, _) = CompactionChild.configuration(policy: policy, seed: seed, round: round)
        var model = CompactionModel()
        var tally = RoundTally()
        var lifeStart: Int64 = 0
        for life in 0..<random.within(1...3) {
            let killAfter = random.chance(10) ? 0 : random.within(1...400)
            let child = try ChildProcess(
                executable: executable,
                arguments: [
                    "torture-child", "--compaction", "--dir", directory, "--flush", policy.description, "--seed", "\(seed)", "--round", "\(round)",
                    "--life", "\(life)",
                ],
                standardErrorPath: directory + ".stderr")
            var batches = CompactionChild.batches(seed: seed, round: round, life: life)
            var next = lifeStart
            var seen = 0
            func take(_ line: String) throws {
                let fields = line.split(separator: " ")
                if fields.count == 2, fields[0] == "start", let start = Int64(fields[1]) {
                    try require(start == lifeStart, "life \(life): the child recovered a log ending at \(start), the parent's recovery at \(lifeStart)")
                    return
                }
                guard fields.count == 2, let base = Int64(fields[0]), let end = Int64(fields[1]) else { throw TortureViolation("the child printed \"\(line)\"") }
                let (_, records) = try batches.next(clock: 0)
                try require(
                    base == next && end == next + Int64(records.count),
                    "life \(life): batch acknowledged at \(base)..<\(end), expected \(next)..<\(next + Int64(records.count)): offsets reused or skipped")
                model.wrote(records, at: base)
                model.acknowledge(through: end)
                next = end
            }
            while seen < killAfter, let line = child.readLine() {
                try take(line)
                if !line.hasPrefix("start") { seen += 1 }
            }
            child.kill()
            // Lines written before the kill still count: they were acknowledged.
            while let line = child.readLine() { try take(line) }
            let (signal, status) = child.wait()
            guard signal == SIGKILL else {
                let errors = (try? PosixFileSystem().readFile(directory + ".stderr")).map { String(decoding: $0, as: UTF8.self) } ?? ""
                throw TortureViolation("life \(life): the child ended by itself (signal \(signal ?? 0), status \(status)) before the kill: \(errors)")
            }
            tally.events += 1

            // Recover; the batches written but not acknowledged that survived are the next ones of the life.
            let context = "after kill \(life + 1) (\(seen) acknowledgements read first)"
            // A kill in the middle of a clean leaves `.cleaned` or `.swap` files for the open to finish or discard.
            let leftovers = (try? PosixFileSystem().listDirectory("\(directory)/\(CompactionChild.partition.directoryName)")) ?? []
            if leftovers.contains(where: { $0.hasSuffix(".cleaned") || $0.hasSuffix(".swap") }) { tally.cutsWhileCleaning += 1 }
            let (manager, _) = try LogManager.open(
                directory: directory, configuration: configuration, configurations: [CompactionChild.partition: configuration], checkpointInterval: nil,
                cleaner: LogCleanerConfiguration(enabled: false))
            guard let log = manager.log(CompactionChild.partition) else {
                try require(model.acknowledgedEnd == 0, "\(context): the partition is gone")
                try manager.close()
                continue
            }
            let end = log.logEndOffset
            while next < end {
                let (_, records) = try batches.next(clock: 0)
                model.wrote(records, at: next)
                next += Int64(records.count)
            }
            try require(next == end || end < lifeStart || end <= model.acknowledgedEnd, "\(context): the log ends at \(end), inside the batch ending at \(next)")
            model.truncate(to: end)
            tally.checked += try model.check(log, context, now: nil, deleteRetention: configuration.deleteRetentionMilliseconds, random: &random)
            model.acknowledge(through: end)
            lifeStart = end
            try manager.close()
        }
        tally.acknowledged = model.acknowledgedRecords
        unlink(directory + ".stderr")
        return tally
    }
}
