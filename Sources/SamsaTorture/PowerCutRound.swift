public import SamsaStorage

/// What one round did, for the summary.
public struct RoundTally: Sendable, Hashable {
    /// Records whose append the flush policy acknowledged.
    public var acknowledged = 0
    /// Records compared byte for byte after a crash, power cut or reopen (recovery's results; the
    /// checks between other steps are not counted).
    public var checked = 0
    /// Power cuts, kills or injected failures the round survived.
    public var events = 0
    /// Of `events`, those that struck during a cleaning pass (compaction rounds).
    public var cutsWhileCleaning = 0

    public init() {}

    static func += (left: inout RoundTally, right: RoundTally) {
        left.acknowledged += right.acknowledged
        left.checked += right.checked
        left.events += right.events
        left.cutsWhileCleaning += right.cutsWhileCleaning
    }
}

/// A power-cut round: a random workload on `FaultInjectingFileSystem`, the power cut after a random
/// number of file operations (mid-append, mid-roll, mid-truncation, mid-recovery…), each file keeping
/// a random prefix of its unsynced writes with the last one torn, then recovery and the checks: nothing
/// the flush policy made durable is lost (every acknowledged record under every-append; everything
/// below the flushed offset the log reported, and everything flushed, closed or truncated under every
/// policy), nothing is invented, the survivors end on a batch boundary and match the model byte for
/// byte, reads through the indexes land on the right batches, `LogVerifier` is clean, and the log then
/// takes appends at the next offset.
///
/// Between steps, before the cut, the log is compared with the model after every step.
public struct PowerCutRound: Sendable {
    public var policy: FlushPolicy
    public var seed: UInt64
    public var round: Int
    public var directory: String
    /// A disk whose syncs make nothing durable: for tests that the checks catch a loss.
    var lyingDisk = false

    public init(policy: FlushPolicy, seed: UInt64, round: Int, directory: String) {
        self.policy = policy
        self.seed = seed
        self.round = round
        self.directory = directory
    }

    public func run() async throws -> RoundTally {
        var random = TortureRandom(seed: seed, round: round, stream: 1)
        let configuration = LogWorkload.randomConfiguration(policy, &random)
        let files = FaultInjectingFileSystem()
        if lyingDisk { files.makeSyncsLie() }
        var workload = try LogWorkload(directory: directory, configuration: configuration, files: files, random: random)
        let steps = workload.random.within(10...120)
        let cutAt = workload.random.below(steps)
        var tally = RoundTally()
        var history: [String] = []
        for step in 0..<(steps + 50) {
            if step == cutAt { workload.files.cutPower(afterOperations: workload.random.below(40)) }
            if step >= steps && workload.files.powerIsOff { break }
            let action = LogWorkload.Step.pick(&workload.random)
            history.append(action.description)
            do {
                try await workload.perform(action)
            } catch let violation as TortureViolation {
                throw TortureViolation("step \(step) (\(action)): \(violation)", lost: violation.lost)
            } catch {
                guard workload.files.powerIsOff else { throw TortureViolation("step \(step) (\(action)) failed with the power on: \(error)") }
            }
            if workload.files.powerIsOff { break }
            // Counted: the checks after a reopen (every step is checked; the count is what recovery kept).
            let checked = try workload.check("step \(step) (\(action))")
            if action == .cleanReopen || action == .crashReopen { tally.checked += checked }
        }
        // The moment has come if the steps ran out first.
        workload.files.cutPower(afterOperations: 0)
        // A flush waits for any background sync under way (it fails: the power is off).
        try? workload.log?.flush()
        var required = max(workload.model.durableEnd, workload.log?.flushedOffset ?? 0, workload.lastFlushed)
        if let target = workload.uncertainTruncation { required = min(required, target) }
        var recoveryPoint = Int64(workload.random.below(Int(required) + 1))
        if let target = workload.uncertainTruncation { recoveryPoint = min(recoveryPoint, target) }
        workload.log = nil
        workload.files.simulatePowerCut(tearing: &workload.random)
        workload.files = FaultInjectingFileSystem()
        tally.events += 1
        tally.acknowledged = workload.acknowledgedRecords

        let context = "after the power cut (\(history.count) steps: \(history.suffix(4).joined(separator: ", ")))"
        let log: PartitionLog
        do {
            log = try PartitionLog.open(directory: directory, configuration: configuration, recoveryPoint: recoveryPoint, files: workload.files).log
        } catch {
            throw TortureViolation("\(context): recovery failed: \(error)")
        }
        workload.log = log
        let survived = log.logEndOffset
        try require(
            survived >= required,
            "\(context): LOST acknowledged records: the log ends at \(survived), but every offset below \(required) was durable (policy \(policy))",
            lost: Int(required - survived))
        // Batches a failed step may have left on disk (a failed truncation's unsynced cut) may be back.
        do {
            try workload.adoptMaybeWritten(log)
        } catch {
            throw TortureViolation("\(context): \(error.message)")
        }
        try require(workload.model.isBoundary(survived), "\(context): the log ends at \(survived), inside a batch")
        workload.model.truncate(to: survived)
        if workload.uncertainTruncation != nil {
            try require(log.logStartOffset >= workload.model.start && workload.model.isBoundary(log.logStartOffset), "\(context): log start \(log.logStartOffset)")
            workload.model.advanceStart(to: log.logStartOffset)
        }
        tally.checked += try workload.check(context)
        workload.model.reopened()

        // The recovered log carries on: appends get the next offsets and survive a clean reopen.
        for _ in 0..<workload.random.within(1...4) {
            do {
                try await workload.perform(.append)
            } catch let violation as TortureViolation {
                throw TortureViolation("\(context), appending: \(violation)")
            } catch {
                throw TortureViolation("\(context): the recovered log refused an append: \(error)")
            }
        }
        do {
            try await workload.perform(.cleanReopen)
        } catch let violation as TortureViolation {
            throw violation
        } catch {
            throw TortureViolation("\(context): close and reopen after recovery failed: \(error)")
        }
        _ = try workload.check("\(context), then appends and a clean reopen")
        try workload.log?.close()
        return tally
    }
}
