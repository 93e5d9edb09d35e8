import Foundation
import Glibc
import NIOCore
import SamsaRecords
import SamsaStorage
import SamsaTool

// Log cleaner benchmarks (issue 23), `--only cleaner`:
// 1. Throughput: a log of `cleanerLogMegabytes` MB of keyed records over 100,000 keys (most records
//    superseded), cleaned by the cleaner with the default 128 MiB dedupe buffer, in MB/s of dirty log,
//    beside the machine's sequential copy limit measured in the same run: `cp` of the same segment
//    files into a fresh directory followed by `sync` of the copies. Each run cleans a fresh copy (the
//    copy being the baseline); median of `runs`. The issue's target: at least 0.5x the copy.
// 2. Memory: the peak resident set while cleaning a log of 10 M distinct keys with the default
//    128 MiB dedupe buffer (VmHWM, reset through /proc/self/clear_refs before the clean), which must
//    stay within the buffer plus a small constant.

private let cleanerPartition = TopicPartition(topic: "compacted", partition: 0)

private func compactedLogConfiguration() -> LogConfiguration {
    LogConfiguration(
        segmentBytes: 64 << 20, flushPolicy: .never, fileDeleteDelayMilliseconds: 0, cleanupPolicy: .compact, deleteRetentionMilliseconds: 86_400_000)
}

/// Writes `batches` batches from `make` into a new compacted log in `directory`, seals it, closes it cleanly.
private func writeCompactedLog(_ directory: String, batches: Int, _ make: (Int) -> RecordBatch) throws {
    let (manager, _) = try LogManager.open(directory: directory, configuration: compactedLogConfiguration(), checkpointInterval: nil,
        cleaner: LogCleanerConfiguration(enabled: false))
    let log = try manager.createLog(cleanerPartition, configuration: compactedLogConfiguration())
    for index in 0..<batches { _ = try log.appendWithoutWaiting(make(index)) }
    try log.roll()
    try log.flush()
    try manager.close()
}

/// Bytes of the `.log` files of the partition in `directory`.
private func segmentBytes(_ directory: String) -> Int {
    let path = "\(directory)/\(cleanerPartition.directoryName)"
    return ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".log") }.reduce(0) {
        $0 + (((try? FileManager.default.attributesOfItem(atPath: "\(path)/\($1)"))?[.size] as? Int) ?? 0)
    }
}

private func shell(_ command: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    try! process.run()
    process.waitUntilExit()
    precondition(process.terminationStatus == 0, "\(command) failed")
}

/// Cleans the partition in `directory` to the end with the default cleaner settings; returns seconds
/// and the bytes the passes read and wrote.
private func cleanToEnd(_ directory: String) throws -> (seconds: Double, passes: Int, read: Int64, written: Int64) {
    let (manager, _) = try LogManager.open(directory: directory, configuration: compactedLogConfiguration(),
        configurations: [cleanerPartition: compactedLogConfiguration()], checkpointInterval: nil, cleaner: LogCleanerConfiguration(enabled: false))
    let started = now()
    var passes = 0
    while manager.cleaner.clean(cleanerPartition) { passes += 1 }
    let elapsed = seconds(now() - started)
    let statistics = manager.cleaner.statistics
    precondition(statistics.uncleanablePartitions.isEmpty, "cleaning failed: \(statistics.uncleanablePartitions)")
    try manager.close()
    return (elapsed, passes, statistics.bytesRead, statistics.bytesWritten)
}

/// `VmRSS` or `VmHWM` of this process, in bytes.
private func residentBytes(_ field: String) -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return 0 }
    return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
}

func cleanerBenchmarks() throws {
    let megabytes = Int(ProcessInfo.processInfo.environment["SAMSA_CLEANER_LOG_MB"] ?? "") ?? (quick ? 100 : 300)
    let distinctKeys = 100_000
    let recordsPerBatch = 100
    let valueSize = 200
    let batchCount = megabytes * 1_000_000 / (recordsPerBatch * (valueSize + 30))
    let pristine = scratchDirectory("cleaner-source")
    defer { cleanUp(pristine) }
    var events = SyntheticEvents(seed: 23)
    var keyState: UInt64 = 23
    try writeCompactedLog(pristine, batches: batchCount) { _ in
        var builder = RecordBatchBuilder(capacity: recordsPerBatch * (valueSize + 64))
        for index in 0..<recordsPerBatch {
            let key = Array("key-\(String(format: "%08d", nextKey(&keyState, below: distinctKeys)))".utf8)
            builder.append(timestamp: 1_764_000_000_000 + Int64(index), key: key, value: events.next(size: valueSize))
        }
        return try! builder.build()
    }
    let dirty = segmentBytes(pristine)
    var cleanRates: [Double] = []
    var copyRates: [Double] = []
    var lastWritten: Int64 = 0
    for _ in 0..<max(runs, 3) {
        let copy = scratchDirectory("cleaner-copy")
        defer { cleanUp(copy) }
        let started = now()
        shell("cp -r '\(pristine)/.' '\(copy)/' && sync '\(copy)/\(cleanerPartition.directoryName)'/*.log")
        copyRates.append(Double(dirty) / seconds(now() - started))
        let result = try cleanToEnd(copy)
        cleanRates.append(Double(dirty) / result.seconds)
        lastWritten = result.written
    }
    let clean = median(cleanRates)
    let copy = median(copyRates)
    report(
        "cleaner: \(dirty >> 20) MiB dirty, \(distinctKeys / 1000)k keys", formatRate(clean),
        "cp + sync of the same files \(formatRate(copy)) (\(String(format: "%.2f", clean / copy))x); runs \(cleanRates.map { formatRate($0) }), kept \(lastWritten >> 20) MiB")

    // Peak memory with 10 M distinct keys and the default 128 MiB dedupe buffer.
    let keys = Int(ProcessInfo.processInfo.environment["SAMSA_CLEANER_KEYS"] ?? "") ?? (quick ? 2_000_000 : 10_000_000)
    let large = scratchDirectory("cleaner-keys")
    defer { cleanUp(large) }
    let perBatch = 1000
    try writeCompactedLog(large, batches: keys / perBatch) { batch in
        var builder = RecordBatchBuilder(capacity: perBatch * 48)
        for index in 0..<perBatch {
            builder.append(timestamp: 1_764_000_000_000, key: Array("key-\(String(format: "%010d", batch * perBatch + index))".utf8), value: Array("v".utf8))
        }
        return try! builder.build()
    }
    let before = residentBytes("VmRSS")
    let reset = resetPeakResident()
    let result = try cleanToEnd(large)
    let peak = residentBytes("VmHWM")
    let bound = LogCleanerConfiguration().dedupeBufferBytes
    report(
        "cleaner peak memory: \(keys / 1_000_000) M keys, \(segmentBytes(large) >> 20) MiB", "\((peak - before) >> 20) MiB over \(before >> 20) MiB",
        "dedupe buffer \(bound >> 20) MiB, \(result.passes) passes, \(String(format: "%.1f", result.seconds)) s\(reset ? "" : " (VmHWM not reset: peak since start)")")
}

/// A seeded key number below `bound` (a 64-bit LCG's high bits): the same log in every run.
private func nextKey(_ state: inout UInt64, below bound: Int) -> Int {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return Int((state >> 33) % UInt64(bound))
}

/// Resets VmHWM to the current resident set (`echo 5 > /proc/self/clear_refs`, Linux 4.0+).
private func resetPeakResident() -> Bool {
    guard let file = fopen("/proc/self/clear_refs", "w") else { return false }
    defer { fclose(file) }
    return fputs("5", file) >= 0 && fflush(file) == 0
}
