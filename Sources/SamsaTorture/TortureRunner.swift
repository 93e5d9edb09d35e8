import Dispatch
import Glibc
public import SamsaStorage

/// The kinds of round.
public enum TortureMode: String, CaseIterable, Sendable {
    case powerCut = "power-cut"
    case sigkill
    case ioError = "io-error"
    case queue
    /// Compaction (issue 23): power cuts, SIGKILLs and I/O errors while the log cleaner cleans and swaps.
    case compactionPowerCut = "compaction-power-cut"
    case compactionSigkill = "compaction-sigkill"
    case compactionIOError = "compaction-io-error"

    /// `--mode compaction`: its three kinds of round.
    public static let compaction: [TortureMode] = [.compactionPowerCut, .compactionSigkill, .compactionIOError]
}

/// What to run.
public struct TortureOptions: Sendable {
    public var rounds: Int
    public var seed: UInt64
    public var startRound: Int
    public var policy: FlushPolicy
    public var modes: [TortureMode]
    /// Rounds run in fresh directories under this one; a failed round's directory is kept.
    public var directory: String
    /// A progress line after every this many rounds.
    public var progressEvery: Int
    /// The `samsa` executable, for SIGKILL rounds.
    public var executable: String?
    /// Run every round even after a violation (to measure how often one happens); the summary names
    /// the first violation and the rounds that failed.
    public var keepGoing = false

    public init(
        rounds: Int, seed: UInt64, startRound: Int = 0, policy: FlushPolicy, modes: [TortureMode], directory: String, progressEvery: Int = 100,
        executable: String? = nil
    ) {
        self.rounds = rounds
        self.seed = seed
        self.startRound = startRound
        self.policy = policy
        self.modes = modes
        self.directory = directory
        self.progressEvery = progressEvery
        self.executable = executable
    }
}

/// What a run did: the figures a user can quote.
public struct TortureSummary: Sendable {
    public var seed: UInt64
    public var flush: String
    public var modes: [TortureMode]
    public var startRound: Int
    public var rounds = 0
    public var powerCuts = 0
    public var kills = 0
    public var injectedFailures = 0
    /// Power cuts and kills that struck in the middle of a cleaning pass (compaction rounds).
    public var duringCleaning = 0
    public var recordsAcknowledged = 0
    public var recordsChecked = 0
    /// Acknowledged records missing afterwards: a run stops at the first, so 0 or 1 batch's worth.
    public var lost = 0
    public var failures = 0
    public var seconds = 0.0
    public var failure: String?
    /// The command that replays the first failed round alone.
    public var replay: String?
    /// Every failed round, with its mode (with `keepGoing`).
    public var failedRounds: [String] = []

    public var progressLine: String {
        "rounds \(rounds), acknowledged \(recordsAcknowledged), checked \(recordsChecked), failures \(failures), \(oneDecimal(seconds)) s"
    }

    public var summaryLines: [String] {
        var lines = [
            "torture: seed \(seed), flush \(flush), modes \(modes.map(\.rawValue).joined(separator: ",")), rounds \(startRound)..<\(startRound + rounds)",
            "  power cuts \(powerCuts), SIGKILLs \(kills), injected I/O failures \(injectedFailures)"
                + (modes.contains(where: TortureMode.compaction.contains) ? " (power cuts and kills in the middle of a cleaning pass: \(duringCleaning))" : ""),
            "  records acknowledged \(recordsAcknowledged), records checked \(recordsChecked), lost \(lost), failures \(failures)",
            "  run time \(oneDecimal(seconds)) s",
        ]
        if let failure { lines.append("FAILED: \(failure)") }
        if failedRounds.count > 1 { lines.append("failed rounds: \(failedRounds.joined(separator: " "))") }
        if let replay { lines.append("replay: \(replay)") }
        return lines
    }
}

/// `12.3`: seconds as a summary prints them.
func oneDecimal(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

public enum TortureRunner {
    /// Runs the rounds in order, stopping at the first violation (or error the round did not expect).
    public static func run(_ options: TortureOptions, progress: (TortureSummary) -> Void = { _ in }) async -> TortureSummary {
        let started = DispatchTime.now()
        var summary = TortureSummary(seed: options.seed, flush: options.policy.description, modes: options.modes, startRound: options.startRound)
        let files = PosixFileSystem()
        try? files.makeDirectory(options.directory)
        let childRounds = BlockingQueue(label: "samsa.torture.child-rounds")
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9 }
        for round in options.startRound..<(options.startRound + options.rounds) {
            for mode in options.modes {
                let directory = "\(options.directory)/round-\(round)-\(mode.rawValue)"
                removeTree(directory)
                do {
                    let tally: RoundTally
                    switch mode {
                    case .powerCut:
                        tally = try await PowerCutRound(policy: options.policy, seed: options.seed, round: round, directory: directory).run()
                        summary.powerCuts += tally.events
                    case .ioError:
                        tally = try await IOErrorRound(policy: options.policy, seed: options.seed, round: round, directory: directory).run()
                        summary.injectedFailures += tally.events
                    case .sigkill:
                        guard let executable = options.executable else { throw TortureViolation("SIGKILL rounds need the samsa executable") }
                        // The round waits for its child and verifies on disk: off the cooperative pool.
                        tally = try await childRounds.run {
                            try SigkillRound(policy: options.policy, seed: options.seed, round: round, directory: directory, executable: executable).run()
                        }
                        summary.kills += tally.events
                    case .queue:
                        guard let executable = options.executable else { throw TortureViolation("queue rounds need the samsa executable") }
                        tally = try await childRounds.run {
                            try QueueRound(policy: options.policy, seed: options.seed, round: round, directory: directory, executable: executable).run()
                        }
                        summary.kills += tally.events
                    case .compactionPowerCut:
                        tally = try await CompactionPowerCutRound(policy: options.policy, seed: options.seed, round: round, directory: directory).run()
                        summary.powerCuts += tally.events
                    case .compactionIOError:
                        tally = try await CompactionIOErrorRound(policy: options.policy, seed: options.seed, round: round, directory: directory).run()
                        summary.injectedFailures += tally.events
                    case .compactionSigkill:
                        guard let executable = options.executable else { throw TortureViolation("SIGKILL rounds need the samsa executable") }
                        tally = try await childRounds.run {
                            try CompactionSigkillRound(policy: options.policy, seed: options.seed, round: round, directory: directory, executable: executable).run()
                        }
                        summary.kills += tally.events
                    }
                    summary.duringCleaning += tally.cutsWhileCleaning
                    summary.recordsAcknowledged += tally.acknowledged
                    summary.recordsChecked += tally.checked
                    removeTree(directory)
                } catch {
                    summary.failures += 1
                    summary.lost += (error as? TortureViolation)?.lost ?? 0
                    summary.failedRounds.append("\(round)/\(mode.rawValue)")
                    if summary.failure == nil {
                        summary.failure = "round \(round) (\(mode.rawValue)): \(error) [files kept in \(directory)]"
                        summary.replay =
                            "samsa torture --seed \(options.seed) --start-round \(round) --rounds 1 --flush \(options.policy) --mode \(mode.rawValue) --dir \(options.directory)"
                    } else {
                        removeTree(directory)
                    }
                    if !options.keepGoing {
                        summary.rounds = round - options.startRound + 1
                        summary.seconds = elapsed()
                        return summary
                    }
                }
            }
            summary.rounds = round - options.startRound + 1
            summary.seconds = elapsed()
            if summary.rounds % max(options.progressEvery, 1) == 0 { progress(summary) }
        }
        summary.seconds = elapsed()
        return summary
    }

    /// Removes a round's directory and everything in it (rounds create one level of files).
    static func removeTree(_ path: String) {
        let files = PosixFileSystem()
        guard files.fileExists(path) else { return }
        for name in (try? files.listDirectory(path)) ?? [] {
            let child = "\(path)/\(name)"
            if (try? files.listDirectory(child)) != nil { removeTree(child) } else { try? files.unlink(child) }
        }
        try? files.removeDirectory(path)
    }
}
