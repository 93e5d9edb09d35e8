import Glibc
public import SamsaStorage

/// A compaction I/O-error round: the compaction workload, with one kind of failure (EIO or ENOSPC on
/// write, fsync, fdatasync, ftruncate, rename, unlink or the creation of a file, on any file or on the
/// `.cleaned`/`.swap` files only) armed as some cleaning passes start, a random number of calls in,
/// once or a few times. Checks: after each such pass the open log still reads as the model says (a
/// failed clean changes nothing a reader sees); after a process crash and a recovery on a healthy
/// disk nothing acknowledged is lost, no deleted key is back, no offset is reused; a clean to the end
/// then succeeds and the log checks again after a clean reopen.
public struct CompactionIOErrorRound: Sendable {
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

    static let operations: [FaultInjectingFileSystem.Operation] = [.write, .fsync, .fdatasync, .ftruncate, .rename, .unlink, .open]

    public func run() async throws -> RoundTally {
        let random = TortureRandom(seed: seed, round: round, stream: 12)
        var workload = try CompactionWorkload(
            directory: directory, policy: policy, acknowledgeOnAppend: true, files: FaultInjectingFileSystem(), random: random,
            keys: CompactionBatches.keySpace(seed: seed, round: round))
        var tally = RoundTally()
        var faults: [String] = []
        for step in 0..<workload.random.within(20...100) {
            let action = CompactionWorkload.Step.pick(&workload.random)
            var fault: String?
            if action == .clean && workload.random.chance(85) {
                let operation = Self.operations[workload.random.below(Self.operations.count)]
                let errno = workload.random.chance(50) ? EIO : ENOSPC
                let path = ["", "", ".cleaned", ".swap", "checkpoint"][workload.random.below(5)]
                workload.files.inject(operation, errno: errno, pathContains: path, times: workload.random.within(1...3), after: workload.random.below(12))
                fault = "\(operation) \(errno == EIO ? "EIO" : "ENOSPC") on \(path.isEmpty ? "any file" : path)"
            }
            let fired = workload.files.faultsFired
            do {
                try await workload.perform(action)
            } catch let violation as TortureViolation {
                throw TortureViolation("step \(step) (\(action)): \(violation) (failures so far: \(faults.joined(separator: "; ")))", lost: violation.lost)
            } catch {
                throw TortureViolation("step \(step) (\(action)) failed with no failure injected: \(error)")
            }
            workload.files.clearFaults()
            if let fault, workload.files.faultsFired > fired {
                faults.append("step \(step): \(fault) (\(workload.files.firedFaults.suffix(workload.files.faultsFired - fired).joined(separator: ", ")))")
            }
            // A failed clean changes nothing readers see (its leftovers go at the next open).
            let context = "step \(step) (\(action))\(faults.isEmpty ? "" : " after \(faults.joined(separator: "; "))")"
            _ = try workload.check(context, verifyFiles: workload.files.faultsFired == 0)
        }
        tally.events = workload.files.faultsFired

        // A process crash, then recovery on a healthy disk.
        workload.manager = nil
        workload.log = nil
        workload.files = workload.files.crashProcess()
        workload.files.clearFaults()
        let context = "after \(faults.isEmpty ? "no failure" : faults.joined(separator: "; ")) and a process crash"
        do {
            try workload.open()
        } catch {
            throw TortureViolation("\(context): recovery failed: \(error)")
        }
        try workload.adoptMaybeWritten()
        tally.checked += try workload.check(context)
        workload.model.acknowledge(through: workload.log!.logEndOffset)
        try await workload.perform(.append)
        try await workload.perform(.roll)
        workload.clean()
        _ = try workload.check("\(context), then a clean")
        try await workload.perform(.cleanReopen)
        tally.checked += try workload.check("\(context), then a clean and a clean reopen")
        tally.acknowledged = workload.model.acknowledgedRecords
        try workload.manager?.close()
        return tally
    }
}
