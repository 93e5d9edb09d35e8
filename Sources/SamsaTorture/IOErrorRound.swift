import Glibc
public import SamsaStorage

/// An I/O-error round: one kind of failure (EIO or ENOSPC on write, fdatasync, fsync, ftruncate,
/// fallocate, rename, unlink or the creation of a file: the `.log`, or an index as it is created or
/// grown before mapping) injected a random number of calls in, once or a few times, under the random
/// workload. Checks: every failure surfaces as an error of the step that met it (or of the next
/// flush); after a failure the log either keeps working (and what it then acknowledges survives) or
/// refuses writes for good; a process crash afterwards loses nothing that was acknowledged and
/// invents nothing.
public struct IOErrorRound: Sendable {
    public var policy: FlushPolicy
    public var seed: UInt64
    public var round: Int
    public var directory: String
    /// The calls a fault may hit (tests narrow it).
    var operations = Self.operations

    public init(policy: FlushPolicy, seed: UInt64, round: Int, directory: String) {
        self.policy = policy
        self.seed = seed
        self.round = round
        self.directory = directory
    }

    static let operations: [FaultInjectingFileSystem.Operation] = [.write, .fdatasync, .fsync, .ftruncate, .fallocate, .rename, .unlink, .open]

    /// The model check, except a read that failed while an injected failure is still to come.
    private static func check(_ workload: inout LogWorkload, _ context: String) -> TortureViolation? {
        do {
            _ = try workload.check(context, liveTail: true)
            return nil
        } catch {
            return error.readFailed && workload.files.faultsLeft > 0 ? nil : error
        }
    }

    public func run() async throws -> RoundTally {
        var random = TortureRandom(seed: seed, round: round, stream: 2)
        let configuration = LogWorkload.randomConfiguration(policy, &random)
        let files = FaultInjectingFileSystem()
        var workload = try LogWorkload(directory: directory, configuration: configuration, files: files, random: random)
        let operation = operations[workload.random.below(operations.count)]
        let errno = workload.random.chance(50) ? EIO : ENOSPC
        let pathContains = ["", ".log", ".index", ".timeindex"][workload.random.below(4)]
        let fault = "\(operation) \(errno == EIO ? "EIO" : "ENOSPC") on \(pathContains.isEmpty ? "any file" : pathContains)"
        files.inject(operation, errno: errno, pathContains: pathContains, times: workload.random.within(1...3), after: workload.random.below(60))
        var tally = RoundTally()
        var failures: [String] = []
        var refused = false
        for step in 0..<workload.random.within(20...100) {
            let action = LogWorkload.Step.pick(&workload.random)
            let endBefore = workload.model.end
            do {
                try await workload.perform(action)
                let wrote = workload.model.end > endBefore
                try require(!(refused && wrote), "step \(step) (\(action)): the log took an append after refusing writes (\(fault))")
                // A new log (a restarted process) may take writes again.
                if action == .cleanReopen || action == .crashReopen { refused = false }
            } catch let violation as TortureViolation {
                let earlier = failures.isEmpty ? "" : " (after: \(failures.joined(separator: "; ")))"
                throw TortureViolation("step \(step) (\(action)) with \(fault): \(violation)\(earlier)", lost: violation.lost)
            } catch let error as StorageError {
                failures.append("step \(step) (\(action)): \(error)")
                if error.code == .closed && (action == .append || action == .concurrentAppends) { refused = true }
                // A reopen that failed dropped the old log too: the next one opened is new.
                if action == .cleanReopen || action == .crashReopen { refused = false }
            }
            // Failed or not, the log must read back as the model says (what a failed step did is in
            // the model by now), unless an injected failure is still to come and met the reads.
            if workload.log != nil {
                if let violation = Self.check(&workload, "step \(step) (\(action))") {
                    let earlier = failures.isEmpty ? "" : " (after: \(failures.joined(separator: "; ")))"
                    throw TortureViolation("with \(fault): \(violation)\(earlier)", lost: violation.lost)
                }
            }
        }
        let fired = workload.files.faultsFired
        // Failures that may stay silent: deleting files happens in the background (leftovers go at
        // the next open); a sealed index that cannot be mapped leaves reads to scan the segment; a
        // write-ahead fill whose zeros cannot be written stops filling (an append's own failed write
        // always surfaces in the append).
        let mustSurface = workload.files.firedFaults.contains {
            !$0.hasPrefix("unlink ") && !$0.hasPrefix("write ") && !($0.hasPrefix("open ") && $0.hasSuffix("index"))
        }
        if mustSurface && failures.isEmpty {
            // Nothing surfaced yet: the next flush must report it (a background flush may have met it).
            do {
                try workload.log?.flush()
                throw TortureViolation("an injected failure (\(fault)) fired \(fired) times (\(workload.files.firedFaults.joined(separator: ", "))) but no call reported it, nor the next flush (write-ahead \(configuration.writeAheadBytes) bytes)")
            } catch let violation as TortureViolation {
                throw violation
            } catch {
                failures.append("final flush: \(error)")
            }
        }
        tally.events += fired

        // A process crash: the page cache keeps every write that reached it; recovery on a healthy disk.
        var required = workload.model.acknowledgedEnd
        if let target = workload.uncertainTruncation { required = min(required, target) }
        let recoveryPoint = Int64(workload.random.below(Int(min(workload.lastFlushed, required)) + 1))
        workload.log = nil
        workload.files = workload.files.crashProcess()
        workload.files.clearFaults()
        let context = "after \(fault) (\(failures.first ?? "no call failed")) and a process crash"
        let log: PartitionLog
        do {
            log = try PartitionLog.open(directory: directory, configuration: configuration, recoveryPoint: recoveryPoint, files: workload.files).log
        } catch {
            throw TortureViolation("\(context): recovery failed: \(error)")
        }
        workload.log = log
        let survived = log.logEndOffset
        try require(survived >= required, "\(context): LOST acknowledged records: the log ends at \(survived), acknowledged up to \(required)", lost: Int(required - survived))
        // Past the model: only batches whose append failed after writing them.
        do {
            try workload.adoptMaybeWritten(log)
        } catch {
            throw TortureViolation("\(context): \(error)")
        }
        try require(workload.model.isBoundary(survived), "\(context): the log ends at \(survived), inside a batch")
        workload.model.truncate(to: survived)
        if workload.uncertainTruncation != nil {
            try require(log.logStartOffset >= workload.model.start && workload.model.isBoundary(log.logStartOffset), "\(context): log start \(log.logStartOffset)")
            workload.model.advanceStart(to: log.logStartOffset)
        }
        tally.checked += try workload.check(context)
        tally.acknowledged = workload.acknowledgedRecords
        try log.close()
        return tally
    }
}
