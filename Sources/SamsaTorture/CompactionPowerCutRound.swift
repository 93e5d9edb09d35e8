public import SamsaStorage

/// A compaction power-cut round: keyed updates and tombstones over a small key space, rolls, cleaning
/// passes and clock ticks on `FaultInjectingFileSystem`; the power goes off a random number of file
/// operations into a cleaning pass (writing `.cleaned` files, renaming them `.swap`, swapping them in,
/// deleting the old segments, writing the cleaner checkpoint) or into the steps after it, each file
/// keeping a random prefix of its unsynced writes. Then the open recovers (finishing or discarding the
/// swap) and the model checks run (`CompactionModel`): nothing acknowledged and durable is lost, no
/// deleted key comes back, offsets never repeat. The recovered log then takes appends at its end, is
/// cleaned to the end with the power on, and is checked again, then after a clean reopen.
///
/// What counts as acknowledged: every append under every-append; under other policies what a flush or
/// a close covered.
public struct CompactionPowerCutRound: Sendable {
    public var policy: FlushPolicy
    public var seed: UInt64
    public var round: Int
    public var directory: String

    public init(policy: FlushPolicy, seed: UInt64, round: Int, directory: String) {
        self.policy = policy
        self.seed = seed
        self.round = round
        self.directory = directory
    }

    public func run() async throws -> RoundTally {
        let random = TortureRandom(seed: seed, round: round, stream: 11)
        var workload = try CompactionWorkload(
            directory: directory, policy: policy, acknowledgeOnAppend: policy == .everyAppend, files: FaultInjectingFileSystem(), random: random,
            keys: CompactionBatches.keySpace(seed: seed, round: round))
        let steps = workload.random.within(20...120)
        // The cut is armed as a cleaning pass starts, after enough steps for segments to clean.
        let cutAt = workload.random.within(steps / 3...steps - 1)
        var history: [String] = []
        var tally = RoundTally()
        for step in 0..<(steps + 60) {
            var action = CompactionWorkload.Step.pick(&workload.random)
            if step == cutAt {
                action = .clean
                workload.files.cutPower(afterOperations: workload.random.below(workload.random.chance(50) ? 12 : 150))
            }
            if step >= steps && workload.files.powerIsOff { break }
            history.append(action.description)
            do {
                try await workload.perform(action)
            } catch let violation as TortureViolation {
                throw TortureViolation("step \(step) (\(action)): \(violation)", lost: violation.lost)
            } catch {
                guard workload.files.powerIsOff else { throw TortureViolation("step \(step) (\(action)) failed with the power on: \(error)") }
            }
            if workload.files.powerIsOff {
                if action == .clean { tally.cutsWhileCleaning += 1 }
                break
            }
            if action == .clean || action == .cleanReopen {
                let checked = try workload.check("step \(step) (\(action))")
                if action == .cleanReopen { tally.checked += checked }
            }
        }
        workload.files.cutPower(afterOperations: 0)
        try? workload.log?.flush()
        workload.manager = nil
        workload.log = nil
        workload.files.simulatePowerCut(tearing: &workload.random)
        workload.files = FaultInjectingFileSystem()
        tally.events += 1
        tally.acknowledged = workload.model.acknowledgedRecords

        let context = "after the power cut (\(history.count) steps: \(history.suffix(4).joined(separator: ", ")))"
        do {
            try workload.open()
        } catch {
            throw TortureViolation("\(context): recovery failed: \(error)")
        }
        try workload.adoptMaybeWritten()
        tally.checked += try workload.check(context)
        workload.model.acknowledge(through: workload.log!.logEndOffset)

        // The recovered log carries on: appends at its end, a clean to the end, a clean reopen.
        for _ in 0..<workload.random.within(1...4) {
            do {
                try await workload.perform(.append)
            } catch let violation as TortureViolation {
                throw TortureViolation("\(context), appending: \(violation)")
            } catch {
                throw TortureViolation("\(context): the recovered log refused an append: \(error)")
            }
        }
        try await workload.perform(.roll)
        workload.clean()
        _ = try workload.check("\(context), then appends and a clean")
        do {
            try await workload.perform(.cleanReopen)
        } catch {
            throw TortureViolation("\(context): close and reopen after recovery failed: \(error)")
        }
        tally.checked += try workload.check("\(context), then appends, a clean and a clean reopen")
        try workload.manager?.close()
        return tally
    }
}
