/// Names of a segment's files: the base offset as 20 zero-padded digits, as Kafka names them.
enum SegmentFiles {
    static let logSuffix = ".log"
    static let indexSuffix = ".index"
    static let timeIndexSuffix = ".timeindex"
    static let deletedSuffix = ".deleted"
    /// A segment the cleaner is writing (Kafka's `.cleaned`): discarded by the next open.
    static let cleanedSuffix = ".cleaned"
    /// A cleaned segment committed to replace the segments its offsets cover (Kafka's `.swap`): the
    /// next open finishes the replacement.
    static let swapSuffix = ".swap"

    static func name(_ baseOffset: Int64) -> String {
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    static func log(_ directory: String, _ baseOffset: Int64) -> String { "\(directory)/\(name(baseOffset))\(logSuffix)" }
    static func index(_ directory: String, _ baseOffset: Int64) -> String { "\(directory)/\(name(baseOffset))\(indexSuffix)" }
    static func timeIndex(_ directory: String, _ baseOffset: Int64) -> String {
        "\(directory)/\(name(baseOffset))\(timeIndexSuffix)"
    }

    /// The base offset a `.log` file name stands for, or nil for any other name.
    static func baseOffset(ofLogFile name: String) -> Int64? {
        guard name.hasSuffix(logSuffix) else { return nil }
        let stem = name.dropLast(logSuffix.count)
        guard stem.count == 20, stem.allSatisfy(\.isASCII), stem.allSatisfy(\.isNumber) else { return nil }
        return Int64(stem)
    }

    /// Files the partition log itself writes in a partition directory: segment files (also renamed
    /// `.deleted`, or the cleaner's `.cleaned` and `.swap`) and checkpoint files with their `.tmp`
    /// copies. Nothing else is ever removed there.
    static func isSamsaFile(_ name: String) -> Bool {
        var name = Substring(name)
        for suffix in [deletedSuffix, ".tmp", cleanedSuffix, swapSuffix] where name.hasSuffix(suffix) { name = name.dropLast(suffix.count) }
        if partitionFiles.contains(String(name)) { return true }
        for suffix in [logSuffix, indexSuffix, timeIndexSuffix] where name.hasSuffix(suffix) {
            let stem = name.dropLast(suffix.count)
            return stem.count == 20 && stem.allSatisfy { $0.isASCII && $0.isNumber }
        }
        return false
    }

    /// Other files a partition directory may hold: the broker's idempotent-producer snapshot (leader
    /// epochs are kept apart, in the data directory's `__leader_epochs/`).
    static let partitionFiles: Set<String> = ["producer.snapshot"]
}
