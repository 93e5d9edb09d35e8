import ArgumentParser
import Samsa
import SamsaStorage

/// `samsa verify DIR`: checks every segment and index of a data directory (or of one partition
/// directory) without changing anything; exits 1 on corruption.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every segment and index of a data directory or a partition directory.",
        discussion: "Read-only: reports problems and exits 1; reopening the directory with Samsa runs recovery."
    )

    @Argument(help: "A data directory (holding <topic>-<partition>/ directories) or one partition directory.")
    var directory: String

    func run() throws {
        let files = PosixFileSystem()
        guard files.fileExists(directory) else { throw ValidationError("no such directory: \(directory)") }
        let names = try files.listDirectory(directory)
        let partitionDirectories = names.compactMap(TopicPartition.init(directoryName:)).map { "\(directory)/\($0.directoryName)" }.sorted()
        let targets = names.contains(where: { $0.hasSuffix(".log") }) || partitionDirectories.isEmpty ? [directory] : partitionDirectories
        var problems = 0
        for target in targets {
            let report = try LogVerifier.verifyPartition(directory: target, files: files)
            let range = report.firstOffset.map { "offsets \($0)..<\(report.nextOffset ?? $0)" } ?? "empty"
            print("\(target): \(report.segments) segments, \(report.batches) batches, \(report.records) records, \(report.bytes) bytes, \(range): \(report.isValid ? "OK" : "CORRUPT")")
            for problem in report.problems { print("  \(problem)") }
            problems += report.problems.count
        }
        if targets != [directory] || files.fileExists("\(directory)/topics.json") {
            // A data directory: also the files that are not logs (each one would make open fail).
            let metadata = Samsa.verifyMetadata(directory: directory)
            print("\(directory): topics, checkpoints and group offsets: \(metadata.isEmpty ? "OK" : "CORRUPT")")
            for problem in metadata { print("  \(problem)") }
            problems += metadata.count
        }
        if problems > 0 {
            standardError("samsa verify: \(problems) problem(s) found")
            throw ExitCode(1)
        }
    }
}
