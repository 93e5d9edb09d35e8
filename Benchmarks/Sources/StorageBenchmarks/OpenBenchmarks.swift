import Foundation
import Glibc
import NIOCore
import SamsaRecords
import SamsaStorage

/// 5. Clean open of 1,000 segments; recovery time with an unflushed tail of growing size on top of a
/// flushed log, which must grow with the tail and not with the whole log.
func openAndRecovery() async throws {
    print("\n## Open and recovery")
    let dir = scratchDirectory("open")
    defer { cleanUp(dir) }
    let small = makeBatch(recordSize: 100, batchBytes: 16 << 10)
    do {
        let (log, _) = try PartitionLog.open(directory: dir, configuration: LogConfiguration(segmentBytes: 64 << 10, flushPolicy: .never))
        for _ in 0..<1000 * ((64 << 10) / small.sizeInBytes) { _ = try log.appendWithoutWaiting(small) }
        try log.close()
        precondition(log.segmentCount >= 1000)
    }
    var opens: [Double] = []
    var segments = 0
    for _ in 0..<runs {
        let start = now()
        let (log, report) = try PartitionLog.open(directory: dir, configuration: LogConfiguration(segmentBytes: 64 << 10), cleanShutdown: true)
        opens.append(seconds(now() - start))
        precondition(report.segmentsScanned == 0)
        segments = log.segmentCount
        try log.close()
    }
    report("clean open, \(segments) segments", String(format: "%.1f ms", median(opens) * 1000), "target ≤ 200 ms")

    let flushedSize = quick ? 1 << 30 : 4 << 30
    let recoveryDir = scratchDirectory("recovery")
    defer { cleanUp(recoveryDir) }
    let big = makeBatch(recordSize: 1024, batchBytes: 1 << 20)
    let configuration = LogConfiguration(segmentBytes: 128 << 20, flushPolicy: .never)
    var recoveryPoint: Int64 = 0
    do {
        let (log, _) = try PartitionLog.open(directory: recoveryDir, configuration: configuration)
        for _ in 0..<(flushedSize / big.sizeInBytes) { _ = try log.appendWithoutWaiting(big) }
        try log.roll()
        try log.flush()
        recoveryPoint = log.flushedOffset
        try log.close()
    }
    var previousTail = 0
    for tail in [64 << 20, 256 << 20, 1 << 30] {
        do {
            let (log, _) = try PartitionLog.open(directory: recoveryDir, configuration: configuration, cleanShutdown: true)
            for _ in 0..<((tail - previousTail) / big.sizeInBytes) { _ = try log.appendWithoutWaiting(big) }
            // No flush, no close: as after a crash.
        }
        previousTail = tail
        var times: [Double] = []
        var scanned = RecoveryReport()
        for _ in 0..<runs {
            let start = now()
            let (log, report) = try PartitionLog.open(directory: recoveryDir, configuration: configuration, recoveryPoint: recoveryPoint)
            times.append(seconds(now() - start))
            scanned = report
            _ = log
        }
        report(
            "recovery, \(tail >> 20) MiB unflushed on \(flushedSize >> 30) GiB flushed", String(format: "%.0f ms", median(times) * 1000),
            "\(scanned.segmentsScanned) segments scanned (\(String(format: "%.0f", Double(tail) / 1e6 / median(times))) MB/s of tail)")
    }
}
