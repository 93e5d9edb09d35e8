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
        // Recovery points tell a torn tail (past one: the next writable open cuts it) from damage.
        let dataDirectory = targets == [directory] && partitionDirectories.isEmpty ? Self.parent(of: directory) : directory
        let recoveryPoints = (try? OffsetCheckpoint.read("\(dataDirectory)/\(LogManager.recoveryPointFile)", files: files)) ?? [:]
        for target in targets {
            let partition = TopicPartition(directoryName: String(target.split(separator: "/").last ?? ""))
            let report = try LogVerifier.verifyPartition(directory: target, recoveryPoint: partition.flatMap { recoveryPoints[$0] }, files: files)
            let range = report.firstOffset.map { "offsets \($0)..<\(report.nextOffset ?? $0)" } ?? "empty"
            let verdict = !report.isValid ? "CORRUPT" : report.tornTail != nil ? "OK, with a torn tail" : "OK"
            print("\(target): \(report.segments) segments, \(report.batches) batches, \(report.records) records, \(report.bytes) bytes, \(range): \(verdict)")
            if let torn = report.tornTail {
                print("  torn tail: \(report.tornTailBytes) bytes past the recovery point, from \(torn); no whole batch is in it, and the next writable open cuts it")
            }
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

    /// The directory holding `path`.
    private static func parent(of path: String) -> String {
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }
}
