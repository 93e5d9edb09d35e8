import ArgumentParser
import Glibc
import SamsaStorage
import SamsaTorture

/// `samsa torture`: seeded crash, power-cut and I/O-error rounds against the storage engine, checked
/// against a model; prints progress and a summary with the counts, exits 1 at the first violation
/// with the command that replays that round alone.
struct Torture: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Torture the storage engine: seeded power cuts, SIGKILLs and I/O errors, checked against a model.",
        discussion: """
            Every round is reproducible from --seed and its number: a failure prints the command that \
            replays it (--start-round R --rounds 1). Rounds run in fresh directories under --dir; a \
            failed round's files are kept there.
            """
    )

    @Option(help: "Rounds to run (per mode).")
    var rounds = 100

    @Option(help: "Seed of the random workloads.")
    var seed: UInt64 = 1

    @Option(help: "First round number (to replay one: --start-round R --rounds 1).")
    var startRound = 0

    @Option(help: "Flush policy: every-append, interval:MS, messages:N or never.")
    var flush: FlushPolicyArgument = FlushPolicyArgument(argument: "every-append")!

    @Option(
        help:
            "power-cut, sigkill, io-error, queue (the embedded queue under SIGKILL), compaction (its three: compaction-power-cut, compaction-sigkill, compaction-io-error) or all."
    )
    var mode: ModeArgument = ModeArgument(argument: "power-cut")!

    @Option(help: "Directory for the rounds' logs (default: a new one under /tmp).")
    var dir: String?

    @Option(help: "Print a progress line every this many rounds.")
    var progressEvery = 100

    @Flag(help: "Go on after a violation (to count them); the summary names the first and lists the failed rounds.")
    var keepGoing = false

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    struct ModeArgument: ExpressibleByArgument {
        let modes: [TortureMode]

        init?(argument: String) {
            if argument == "all" {
                modes = TortureMode.allCases
            } else if argument == "compaction" {
                modes = TortureMode.compaction
            } else if let mode = TortureMode(rawValue: argument) {
                modes = [mode]
            } else {
                return nil
            }
        }

        static var allValueStrings: [String] { TortureMode.allCases.map(\.rawValue) + ["compaction", "all"] }
    }

    func run() async throws {
        let directory = dir ?? "/tmp/samsa-torture-\(getpid())"
        var options = TortureOptions(
            rounds: rounds, seed: seed, startRound: startRound, policy: flush.policy, modes: mode.modes, directory: directory,
            progressEvery: progressEvery, executable: Self.executablePath())
        options.keepGoing = keepGoing
        let json = self.json
        let summary = await TortureRunner.run(options) { progress in
            if !json { print("torture: \(progress.progressLine)") }
        }
        if json {
            print(Self.json(summary))
        } else {
            for line in summary.summaryLines { print(line) }
        }
        if summary.failure != nil { throw ExitCode(1) }
        if dir == nil { try? PosixFileSystem().removeDirectory(directory) }
    }

    /// This executable, for the child processes of SIGKILL rounds.
    static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func json(_ summary: TortureSummary) -> String {
        JSONLine([
            ("seed", .int(Int64(bitPattern: summary.seed))), ("flush", .string(summary.flush)),
            ("modes", .array(summary.modes.map { .string($0.rawValue) })), ("startRound", .int(Int64(summary.startRound))),
            ("rounds", .int(Int64(summary.rounds))), ("powerCuts", .int(Int64(summary.powerCuts))), ("kills", .int(Int64(summary.kills))),
            ("injectedFailures", .int(Int64(summary.injectedFailures))), ("recordsAcknowledged", .int(Int64(summary.recordsAcknowledged))),
            ("recordsChecked", .int(Int64(summary.recordsChecked))), ("lost", .int(Int64(summary.lost))), ("failures", .int(Int64(summary.failures))),
            ("seconds", .double(summary.seconds)), ("failure", summary.failure.map { .string($0) } ?? .null),
            ("replay", summary.replay.map { .string($0) } ?? .null), ("failedRounds", .array(summary.failedRounds.map { .string($0) })),
        ]).rendered
    }
}

/// `samsa torture-child` (hidden): the child process of SIGKILL rounds.
struct TortureChildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "torture-child", shouldDisplay: false)

    @Option var dir: String
    @Option var flush: FlushPolicyArgument
    @Option var seed: UInt64
    @Option var round: Int
    @Option var life: Int
    @Option var batches = 1_000_000
    @Flag var queue = false
    @Flag var compaction = false

    func run() async throws {
        if compaction {
            try await CompactionChild.run(directory: dir, policy: flush.policy, seed: seed, round: round, life: life, batchCount: batches)
        } else if queue {
            try await QueueChild.run(directory: dir, policy: flush.policy, seed: seed, round: round, life: life)
        } else {
            try await TortureChild.run(directory: dir, policy: flush.policy, seed: seed, round: round, life: life, batches: batches)
        }
    }
}
