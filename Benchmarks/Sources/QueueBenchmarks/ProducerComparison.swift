import Foundation
import GRDB
import Glibc
import Samsa

// The producer at full speed (issue 12) beside SQLite in the same run: records handed over as fast as
// the producer takes them (one at a time, and 1,000 per `enqueue(contentsOf:)`), every-append, against
// SQLite WAL synchronous=FULL with 1,000 records per transaction. Interleaved runs, medians.

/// CPU time (user and system, every thread) of this process so far.
func processCPUNanoseconds() -> UInt64 {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func nanoseconds(_ time: timeval) -> UInt64 { UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_usec) * 1000 }
    return nanoseconds(usage.ru_utime) + nanoseconds(usage.ru_stime)
}

struct Throughput {
    var recordsPerSecond: Double
    var cpuPerRecord: Double
}

/// Sends `count` records to an every-append topic with default producer settings but `batchBytes`;
/// `perCall` 1 uses `enqueue(_:)`, more use `enqueue(contentsOf:)`. Timed to the last acknowledgement.
func samsaProducer(values: [[UInt8]], count: Int, perCall: Int, batchBytes: Int) async throws -> Throughput {
    let dir = scratchDirectory("producer")
    defer { cleanUp(dir) }
    let samsa = try Samsa.open(directory: dir)
    defer { try? samsa.close() }
    try samsa.createTopic("t", TopicConfiguration(flushPolicy: .everyAppend))
    let producer = samsa.makeProducer(ProducerConfiguration(batchBytes: batchBytes))
    let cpu = processCPUNanoseconds()
    let start = now()
    if perCall == 1 {
        for index in 0..<count { _ = try await producer.enqueue(ProducerRecord(topic: "t", value: values[index & 1023])) }
    } else {
        var chunk: [ProducerRecord] = []
        chunk.reserveCapacity(perCall)
        var sent = 0
        while sent < count {
            chunk.removeAll(keepingCapacity: true)
            for index in sent..<min(count, sent + perCall) { chunk.append(ProducerRecord(topic: "t", value: values[index & 1023])) }
            _ = try await producer.enqueue(contentsOf: chunk)
            sent += chunk.count
        }
    }
    await producer.flush()
    let elapsed = seconds(now() - start)
    let used = processCPUNanoseconds() - cpu
    let end = try samsa.offsets(topic: "t", partition: 0).end
    precondition(end == Int64(count), "\(end) of \(count) records acknowledged")
    await producer.close()
    return Throughput(recordsPerSecond: Double(count) / elapsed, cpuPerRecord: Double(used) / Double(count))
}

func sqliteAppends(values: [[UInt8]], count: Int, perTransaction: Int) throws -> Throughput {
    let cpu = processCPUNanoseconds()
    let times = try sqliteWorkload(values: values, count: count, batch: perTransaction, synchronous: "FULL")
    return Throughput(recordsPerSecond: Double(count) / times.append, cpuPerRecord: Double(processCPUNanoseconds() - cpu) / Double(count))
}

/// The raw durable write path for the same bytes: write(2) of 1 MiB + fdatasync, extending the file,
/// until `bytes` are written; bytes per second.
func rawDurableWrites(bytes: Int) -> Double {
    let dir = scratchDirectory("raw")
    defer { cleanUp(dir) }
    let fd = open(dir + "/raw.log", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0, "open failed: \(errno)")
    defer { close(fd) }
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    for index in chunk.indices { chunk[index] = UInt8(truncatingIfNeeded: index &* 31) }
    let start = now()
    var written = 0
    chunk.withUnsafeBytes { raw in
        while written < bytes {
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                precondition(n > 0, "write failed: \(errno)")
                done += n
            }
            fdatasync(fd)
            written += raw.count
        }
    }
    return Double(written) / seconds(now() - start)
}

func compareProducerWithSQLite() async throws {
    for (size, count) in [(100, quick ? 300_000 : 2_000_000), (1024, quick ? 100_000 : 400_000)] {
        let values = payloads(size: size)
        print("\n## Producer at full speed, \(count) records of \(size) B, every-append; SQLite WAL FULL, 1,000 per transaction (append only; CPU includes SQLite's reads: none)")
        let modes: [(label: String, perCall: Int, batchBytes: Int)] = [
            ("enqueue one at a time, 16 KiB batches", 1, 16 << 10), ("enqueue(contentsOf:) 1,000, 16 KiB batches", 1000, 16 << 10),
            ("enqueue one at a time, 1 MiB batches", 1, 1 << 20), ("enqueue(contentsOf:) 1,000, 1 MiB batches", 1000, 1 << 20),
        ]
        var samsa: [[Throughput]] = Array(repeating: [], count: modes.count)
        var sqlite: [Throughput] = []
        var raw: [Double] = []
        for _ in 0..<runs {
            raw.append(rawDurableWrites(bytes: count * size))
            for (index, mode) in modes.enumerated() {
                samsa[index].append(try await samsaProducer(values: values, count: count, perCall: mode.perCall, batchBytes: mode.batchBytes))
            }
            // SQLite at 1,000 per transaction takes long for 2 M records; a quarter is enough for its rate.
            sqlite.append(try sqliteAppends(values: values, count: count / 4, perTransaction: 1000))
        }
        let sqliteRate = median(sqlite.map(\.recordsPerSecond))
        report("SQLite WAL FULL, 1,000 per transaction", formatCount(sqliteRate), String(format: "CPU %.0f ns/record", median(sqlite.map(\.cpuPerRecord))))
        let rawRate = median(raw)
        report("raw write(2) 1 MiB + fdatasync, extending (same bytes)", String(format: "%.0f MB/s", rawRate / 1e6))
        for (index, mode) in modes.enumerated() {
            let rate = median(samsa[index].map(\.recordsPerSecond))
            report(
                "Samsa, \(mode.label)", formatCount(rate),
                String(
                    format: "%.1fx SQLite; %.2fx the raw path's bytes/s; CPU %.0f ns/record", rate / sqliteRate, rate * Double(size) / rawRate,
                    median(samsa[index].map(\.cpuPerRecord))))
        }
    }
}
