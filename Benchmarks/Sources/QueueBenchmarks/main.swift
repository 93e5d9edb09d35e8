import Foundation
import GRDB
import Samsa
import SamsaTool

// The embedded durable queue (issue 4), release build: `swift run -c release QueueBenchmarks [--quick]
// [--only sqlite|producer|memory]`. Samsa and SQLite (GRDB) run the same workload in the same run; memory
// figures are resident-set sizes read from /proc/self/status.
let quick = CommandLine.arguments.contains("--quick")
let runs = quick ? 1 : 3
let only = CommandLine.arguments.firstIndex(of: "--only").map { CommandLine.arguments[$0 + 1] }
func selected(_ name: String) -> Bool { only == nil || only == name }
print("Samsa embedded-queue benchmarks (\(quick ? "quick" : "full") run, medians of \(runs))")

/// Realistic JSON values of one size, reused round-robin.
func payloads(size: Int) -> [[UInt8]] {
    var events = SyntheticEvents()
    return (0..<1024).map { _ in events.next(size: size) }
}

// MARK: - Samsa vs SQLite

struct QueueTimes {
    var append: Double
    var read: Double
    /// Samsa only: the in-place scan (`forEachRecord`).
    var scan: Double = 0
}

/// Appends `count` records in transactions / flushes of `batch` records, then reads them in order.
/// With `pipelined`, records are handed over without waiting and batches of about `batch` records are
/// written as they fill, acknowledged as their syncs complete (what the producer API is for); otherwise
/// each batch waits for its acknowledgement before the next, as a transaction per batch does.
func samsaWorkload(values: [[UInt8]], count: Int, batch: Int, durable: Bool, writeAhead: Int = 0, pipelined: Bool = false) async throws -> QueueTimes {
    let dir = scratchDirectory("samsa")
    defer { cleanUp(dir) }
    let samsa = try Samsa.open(directory: dir)
    defer { try? samsa.close() }
    try samsa.createTopic("queue", TopicConfiguration(flushPolicy: durable ? .everyAppend : .interval(milliseconds: 1000), writeAheadBytes: writeAhead))
    // One batch per flush, as SQLite gets one transaction per batch.
    let batchBytes = pipelined ? batch * (values[0].count + 21) : 64 << 20
    let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: pipelined ? 5 : 60_000, batchBytes: batchBytes, bufferBytes: 256 << 20))
    let start = now()
    var sent = 0
    if pipelined {
        for index in 0..<count { _ = try await producer.enqueue(ProducerRecord(topic: "queue", key: nil, value: values[index & 1023])) }
        await producer.flush()
        sent = count
    }
    while sent < count {
        for index in sent..<min(count, sent + batch) {
            _ = try await producer.enqueue(ProducerRecord(topic: "queue", key: nil, value: values[index & 1023]))
        }
        sent = min(count, sent + batch)
        await producer.flush()
    }
    let appended = now()
    var position: Int64 = 0
    var bytes = 0
    while true {
        let records = try samsa.read(topic: "queue", partition: 0, from: position)
        guard let last = records.last else { break }
        for record in records { bytes += record.value?.readableBytes ?? 0 }
        position = last.offset + 1
    }
    let read = now()
    let expectedBytes = (0..<count).reduce(0) { $0 + values[$1 & 1023].count }
    precondition(position == Int64(count) && bytes == expectedBytes)
    position = 0
    bytes = 0
    while true {
        let next = try samsa.forEachRecord(topic: "queue", partition: 0, from: position) { record in bytes += record.value?.count ?? 0 }
        if next == position { break }
        position = next
    }
    let scanned = now()
    precondition(position == Int64(count) && bytes == expectedBytes)
    await producer.close()
    return QueueTimes(append: seconds(appended - start), read: seconds(read - appended), scan: seconds(scanned - read))
}

func sqliteWorkload(values: [[UInt8]], count: Int, batch: Int, synchronous: String) throws -> QueueTimes {
    let dir = scratchDirectory("sqlite")
    defer { cleanUp(dir) }
    let queue = try DatabasePool(path: dir + "/queue.sqlite")  // a pool opens in WAL mode
    // GRDB sets synchronous=NORMAL when it opens a WAL database: set the mode on the writer after that,
    // and check it took.
    try queue.writeWithoutTransaction { db in
        try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        let mode = try Int.fetchOne(db, sql: "PRAGMA synchronous")
        precondition(mode == (synchronous == "FULL" ? 2 : 1), "synchronous is \(String(describing: mode))")
        try db.execute(sql: "CREATE TABLE queue (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, key BLOB, value BLOB)")
    }
    let start = now()
    var sent = 0
    let timestamp = Int64(Date().timeIntervalSince1970 * 1000)
    while sent < count {
        let end = min(count, sent + batch)
        try queue.write { db in
            let statement = try db.makeStatement(sql: "INSERT INTO queue (ts, key, value) VALUES (?, NULL, ?)")
            for index in sent..<end {
                try statement.execute(arguments: [timestamp, Data(values[index & 1023])])
            }
        }
        sent = end
    }
    let appended = now()
    var rows = 0
    var bytes = 0
    try queue.read { db in
        let cursor = try Row.fetchCursor(db, sql: "SELECT id, ts, key, value FROM queue ORDER BY id")
        while let row = try cursor.next() {
            bytes += try row.withUnsafeData(atIndex: 3) { $0?.count ?? 0 }
            rows += 1
        }
    }
    let read = now()
    precondition(rows == count && bytes > 0)
    return QueueTimes(append: seconds(appended - start), read: seconds(read - appended))
}

func compareWithSQLite() async throws {
    for (size, count) in [(100, quick ? 50_000 : 200_000), (1024, quick ? 20_000 : 50_000)] {
        let values = payloads(size: size)
        let batch = 100
        print("\n## \(count) records of \(size) B, \(batch) per transaction / flush, then read back in order")
        let modes: [(label: String, durable: Bool, writeAhead: Int, pipelined: Bool, sqlite: String)] = [
            ("every-append", true, 0, false, "FULL"), ("every-append, write-ahead 1 MiB", true, 1 << 20, false, "FULL"),
            ("every-append, pipelined sends", true, 0, true, "FULL"), ("interval:1000", false, 0, false, "NORMAL"),
        ]
        for mode in modes {
            var samsaTimes: [QueueTimes] = []
            var sqliteTimes: [QueueTimes] = []
            for _ in 0..<runs {
                samsaTimes.append(
                    try await samsaWorkload(values: values, count: count, batch: batch, durable: mode.durable, writeAhead: mode.writeAhead, pipelined: mode.pipelined))
                sqliteTimes.append(try sqliteWorkload(values: values, count: count, batch: batch, synchronous: mode.sqlite))
            }
            let samsaAppend = Double(count) / median(samsaTimes.map(\.append))
            let sqliteAppend = Double(count) / median(sqliteTimes.map(\.append))
            let samsaRead = Double(count) / median(samsaTimes.map(\.read))
            let sqliteRead = Double(count) / median(sqliteTimes.map(\.read))
            report("append, Samsa \(mode.label)", formatCount(samsaAppend), String(format: "%.1fx SQLite WAL synchronous=%@ (%@)", samsaAppend / sqliteAppend, mode.sqlite, formatCount(sqliteAppend)))
            let samsaScan = Double(count) / median(samsaTimes.map(\.scan))
            report("read in order, Samsa \(mode.label)", formatCount(samsaRead), String(format: "%.1fx SQLite (%@)", samsaRead / sqliteRead, formatCount(sqliteRead)))
            report("  same, in place (forEachRecord)", formatCount(samsaScan), String(format: "%.1fx SQLite", samsaScan / sqliteRead))
        }
    }
}

// MARK: - Memory

func idlePartitions() async throws {
    print("\n## Resident memory")
    let dir = scratchDirectory("idle")
    defer { cleanUp(dir) }
    do {
        let samsa = try Samsa.open(directory: dir)
        try samsa.createTopic("idle", TopicConfiguration(partitions: 1000))
        try samsa.close()
    }
    let before = residentBytes()
    let samsa = try Samsa.open(directory: dir)
    try await Task.sleep(for: .milliseconds(200))
    let open = residentBytes()
    try samsa.close()
    report("data directory with 1,000 idle partitions, open", megabytes(open), "process RSS; \(megabytes(open - before)) more than before opening (target < 100 MB)")
}

func producerBuffer() async throws {
    let dir = scratchDirectory("buffer")
    defer { cleanUp(dir) }
    let samsa = try Samsa.open(directory: dir)
    defer { try? samsa.close() }
    try samsa.createTopic("t", TopicConfiguration(partitions: 4, flushPolicy: .everyAppend))
    let buffer = 8 << 20
    let producer = samsa.makeProducer(ProducerConfiguration(batchBytes: 256 << 10, bufferBytes: buffer))
    let values = payloads(size: 1024)
    let total = quick ? 100_000 : 400_000
    let before = residentBytes()
    let peakBuffered = PeakCounter()
    let (_, peak) = try await PeakResidentSampler.measure {
        for index in 0..<total {
            _ = try await producer.enqueue(ProducerRecord(topic: "t", key: Array("k\(index)".utf8), value: values[index & 1023]))
            peakBuffered.note(producer.bufferedBytes)
        }
        await producer.flush()
    }
    report(
        "producer, \(total / 1000)k × 1 KiB as fast as it can, every-append", "peak held \(megabytes(peakBuffered.peak))",
        "buffer \(megabytes(buffer)); peak RSS \(megabytes(peak - before)) above the start")
    await producer.close()
}

final class PeakCounter: @unchecked Sendable {
    // @unchecked: used from one task.
    var peak = 0
    func note(_ value: Int) { peak = max(peak, value) }
}

func streamingConsumer() async throws {
    let dir = scratchDirectory("stream")
    defer { cleanUp(dir) }
    let gigabytes = quick ? 0.25 : 1.0
    let values = payloads(size: 1024)
    let count = Int(gigabytes * Double(1 << 30) / 1024)
    do {
        let samsa = try Samsa.open(directory: dir)
        try samsa.createTopic("big", TopicConfiguration(flushPolicy: .never, segmentBytes: 256 << 20))
        let producer = samsa.makeProducer(ProducerConfiguration(batchBytes: 1 << 20, bufferBytes: 64 << 20))
        for index in 0..<count { _ = try await producer.enqueue(ProducerRecord(topic: "big", value: values[index & 1023])) }
        await producer.close()
        try samsa.close()
    }
    let samsa = try Samsa.open(directory: dir)
    defer { try? samsa.close() }
    let consumer = try samsa.consumer(group: "g", topics: ["big"], configuration: ConsumerConfiguration(startPosition: .earliest, maxPollRecords: 10_000))
    let before = residentBytes()
    let (consumed, peak) = try await PeakResidentSampler.measure { () async throws -> Int in
        var consumed = 0
        while consumed < count {
            let records = try await consumer.poll(timeout: .seconds(5))
            if records.isEmpty { break }
            consumed += records.count
        }
        return consumed
    }
    precondition(consumed == count)
    report("group consumer reading a \(String(format: "%.2f", gigabytes)) GiB partition", "peak RSS +\(megabytes(peak - before))", "streams batches; never loads a segment")
    try consumer.close()
}

if selected("sqlite") { try await compareWithSQLite() }
if selected("producer") { try await compareProducerWithSQLite() }
if selected("memory") {
    try await idlePartitions()
    try await producerBuffer()
    try await streamingConsumer()
}
