import Foundation
import Glibc
import NIOCore
import SamsaRecords
import SamsaStorage

/// 1. Append throughput with `.never`, against a write(2) loop of the same batches to a fresh file.
func appendThroughput() async {
    print("\n## Append throughput, flush policy .never, vs write(2) of the same bytes")
    let total = quick ? 128 << 20 : 512 << 20
    for recordSize in [100, 1024] {
        for batchBytes in [16 << 10, 1 << 20] {
            let batch = makeBatch(recordSize: recordSize, batchBytes: batchBytes)
            let count = total / batch.sizeInBytes
            var samsa: [Double] = [], plain: [Double] = []
            for run in 0..<runs {
                for order in [run % 2 == 0, run % 2 != 0] {
                    if order { samsa.append(await timeAppends(batch, count: count)) } else { plain.append(timeWrites(batch, count: count)) }
                }
            }
            let bytes = Double(count * batch.sizeInBytes)
            let records = Double(count) * Double(batch.recordCount)
            let s = median(samsa), p = median(plain)
            report(
                "append \(recordSize) B records, \(batchBytes >> 10) KiB batches",
                "\(formatRate(bytes / s)), \(formatCount(records / s)) rec",
                "write(2): \(formatRate(bytes / p)), ratio \(String(format: "%.2f", p / s))")
        }
    }
}

func timeAppends(_ batch: RecordBatch, count: Int) async -> Double {
    let dir = scratchDirectory("append")
    defer { cleanUp(dir) }
    let (log, _) = try! PartitionLog.open(directory: dir, configuration: LogConfiguration(flushPolicy: .never))
    let start = now()
    for _ in 0..<count { _ = try! log.appendWithoutWaiting(batch) }
    let elapsed = now() - start
    try! log.close()
    return seconds(elapsed)
}

func timeWrites(_ batch: RecordBatch, count: Int) -> Double {
    let dir = scratchDirectory("write")
    defer { cleanUp(dir) }
    let fd = open(dir + "/plain.log", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    defer { close(fd) }
    let start = now()
    batch.buffer.withUnsafeReadableBytes { raw in
        for _ in 0..<count { writeAll(fd, raw) }
    }
    return seconds(now() - start)
}

/// 2. `.everyAppend` with 1, 8 and 64 concurrent appenders: throughput and latency, against one
/// write + fdatasync per batch of the same size; each with the file extended by every append and with
/// write-ahead zeros (appends overwrite synced blocks), in the same run.
func groupCommitLatency() async {
    let duration: UInt64 = quick ? 1_500_000_000 : 3_000_000_000
    for (batchBytes, appenderCounts) in [(4096, [1, 8, 64]), (1 << 20, [1, 4])] {
        let batch = makeBatch(recordSize: 100, batchBytes: batchBytes)
        let label = batchBytes >= 1 << 20 ? "\(batchBytes >> 20) MiB" : "\(batchBytes >> 10) KiB"
        print("\n## Durable appends (.everyAppend), \(label) batches of 100 B records, vs write+fdatasync per batch")
        let baseline = plainSyncedWrites(batch, duration: duration, overwrite: false)
        report("write(2) + fdatasync per batch, extending", "\(formatCount(baseline.rate)) batches, \(formatRate(baseline.rate * Double(batch.sizeInBytes)))", baseline.latencies.summary)
        let overwrite = plainSyncedWrites(batch, duration: duration, overwrite: true)
        report("write(2) + fdatasync per batch, overwriting", "\(formatCount(overwrite.rate)) batches, \(formatRate(overwrite.rate * Double(batch.sizeInBytes)))", overwrite.latencies.summary)
        for appenders in appenderCounts {
            for writeAhead in [0, 1 << 20] {
                let (rate, latencies) = await durableAppends(batch, appenders: appenders, writeAheadBytes: writeAhead, duration: duration)
                report(
                    "\(appenders) appender\(appenders == 1 ? "" : "s"), \(writeAhead == 0 ? "extending" : "write-ahead \(writeAhead >> 20) MiB")",
                    "\(formatCount(rate)) batches, \(formatRate(rate * Double(batch.sizeInBytes)))",
                    "\(String(format: "%.1f", rate / baseline.rate))x baseline; \(latencies.summary)")
            }
        }
    }
}

func durableAppends(_ batch: RecordBatch, appenders: Int, writeAheadBytes: Int, duration: UInt64) async -> (Double, Latencies) {
    let dir = scratchDirectory("durable")
    let configuration = LogConfiguration(flushPolicy: .everyAppend, writeAheadBytes: writeAheadBytes)
    let (log, _) = try! PartitionLog.open(directory: dir, configuration: configuration)
    let start = now()
    let results = await withTaskGroup(of: (Int, Latencies).self) { group in
        for _ in 0..<appenders {
            group.addTask {
                var latencies = Latencies()
                var done = 0
                while now() - start < duration {
                    let before = now()
                    _ = try! await log.append(batch)
                    latencies.record(now() - before)
                    done += 1
                }
                return (done, latencies)
            }
        }
        var total = 0
        var merged = Latencies()
        for await (done, latencies) in group {
            total += done
            merged.merge(latencies)
        }
        return (total, merged)
    }
    let rate = Double(results.0) / seconds(now() - start)
    try! log.close()
    cleanUp(dir)
    return (rate, results.1)
}

/// write + fdatasync per batch; with `overwrite`, into a file whose blocks were written and synced first.
func plainSyncedWrites(_ batch: RecordBatch, duration: UInt64, overwrite: Bool) -> (rate: Double, latencies: Latencies) {
    let dir = scratchDirectory("fsync")
    defer { cleanUp(dir) }
    let fd = open(dir + "/plain.log", O_RDWR | O_CREAT | O_TRUNC, 0o644)
    defer { close(fd) }
    if overwrite {
        // Enough for the run at 12 k syncs/s or 1.5 GB/s, whichever is less (above what limits.md measured).
        let bytes = min(Double(batch.sizeInBytes) * 12_000, 1.5e9) * seconds(duration)
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        zeros.withUnsafeBytes { raw in for _ in 0..<Int(bytes / Double(1 << 20)) + 1 { writeAll(fd, raw) } }
        fdatasync(fd)
        lseek(fd, 0, SEEK_SET)
    }
    var latencies = Latencies()
    var count = 0
    let start = now()
    batch.buffer.withUnsafeReadableBytes { raw in
        while now() - start < duration {
            let before = now()
            writeAll(fd, raw)
            fdatasync(fd)
            latencies.record(now() - before)
            count += 1
        }
    }
    return (Double(count) / seconds(now() - start), latencies)
}
