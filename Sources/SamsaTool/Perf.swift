import ArgumentParser
import Dispatch
import Glibc
import Histogram
import Samsa
import Synchronization

/// `samsa perf produce|consume`: throughput and latency, in the spirit of Kafka's perf-test tools.
struct Perf: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure produce or consume throughput and latency on a data directory.",
        subcommands: [PerfProduce.self, PerfConsume.self]
    )
}

/// Latencies in microseconds, shared by the threads that record them.
final class LatencyRecorder: Sendable {
    private let histogram = Mutex(Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three))
    private let total = Atomic<UInt64>(0)

    func record(microseconds: UInt64) {
        record(microseconds: microseconds, count: 1)
    }

    /// `count` values of `microseconds` at once: one lock for a whole batch of records.
    func record(microseconds: UInt64, count: Int) {
        _ = histogram.withLock { $0.record(max(1, microseconds), count: UInt64(count)) }
        total.add(microseconds &* UInt64(count), ordering: .relaxed)
    }

    /// One latency per value of `starts` (monotonic nanoseconds), each `now - start`: one lock for a
    /// batch of records acknowledged together.
    func record(since starts: [UInt64], now: UInt64) {
        var sum: UInt64 = 0
        histogram.withLock { histogram in
            for start in starts {
                let microseconds = (now &- start) / 1000
                sum &+= microseconds
                _ = histogram.record(max(1, microseconds))
            }
        }
        total.add(sum, ordering: .relaxed)
    }

    struct Summary {
        var count: UInt64
        var average, p50, p99, p999, max: Double
    }

    /// Milliseconds.
    var summary: Summary {
        histogram.withLock { h in
            let count = h.totalCount
            func ms(_ value: UInt64) -> Double { Double(value) / 1000 }
            return Summary(
                count: count, average: count == 0 ? 0 : h.mean / 1000, p50: ms(h.valueAtPercentile(50)), p99: ms(h.valueAtPercentile(99)),
                p999: ms(h.valueAtPercentile(99.9)), max: ms(h.max))
        }
    }
}

/// CPU time (user and system, every thread) this process has used so far.
func processCPUNanoseconds() -> UInt64 {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func nanoseconds(_ time: timeval) -> UInt64 { UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_usec) * 1000 }
    return nanoseconds(usage.ru_utime) + nanoseconds(usage.ru_stime)
}

/// Wall-clock milliseconds since 1970 (record timestamps).
func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

func format(_ value: Double, _ digits: Int = 2) -> String {
    let scale = pow(10.0, Double(digits))
    let rounded = (value * scale).rounded() / scale
    return String(rounded)
}

/// The figures both perf commands end with.
struct PerfSummary {
    var records: Int
    var bytes: Int
    var seconds: Double
    var latency: LatencyRecorder.Summary
    var latencyName: String
    /// The process's CPU time (all threads) over the run.
    var cpuNanoseconds: UInt64

    var cpuPerRecord: Double { records == 0 ? 0 : Double(cpuNanoseconds) / Double(records) }

    var line: String {
        "\(records) records, \(format(Double(records) / seconds, 1)) records/sec (\(format(Double(bytes) / seconds / 1e6)) MB/sec), "
            + "cpu \(format(cpuPerRecord, 0)) ns/record, "
            + "\(latencyName) avg \(format(latency.average)) ms, p50 \(format(latency.p50)) ms, p99 \(format(latency.p99)) ms, "
            + "p99.9 \(format(latency.p999)) ms, max \(format(latency.max)) ms"
    }

    func json(_ extra: [(String, JSONLine.Value)]) -> String {
        JSONLine(
            extra + [
                ("records", .int(Int64(records))), ("bytes", .int(Int64(bytes))), ("seconds", .double(seconds)),
                ("records_per_sec", .double(Double(records) / seconds)), ("mb_per_sec", .double(Double(bytes) / seconds / 1e6)),
                ("cpu_ns_per_record", .double(cpuPerRecord)),
                ("latency_ms", .object([
                    ("avg", .double(latency.average)), ("p50", .double(latency.p50)), ("p99", .double(latency.p99)),
                    ("p99_9", .double(latency.p999)), ("max", .double(latency.max)),
                ])),
            ]
        ).rendered
    }
}

struct PerfProduce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Send records as fast as allowed and report throughput and acknowledgement latency.",
        discussion: "Creates the topic if it does not exist. Latency is from handing a record to the producer to its acknowledgement."
    )

    @Option(help: "Data directory (created if absent).")
    var dir: String?
    @OptionGroup var remote: BootstrapOptions
    @Option(help: "Topic name.")
    var topic = "perf"
    @Option(help: "Number of records to send.")
    var records = 1_000_000
    @Option(help: "Bytes per record value (realistic JSON events).")
    var recordSize = 100
    @Option(help: "Records per second to aim for; -1 for no limit.")
    var throughput = -1
    @Option(help: "Concurrent producers (tasks), each with its share of the records.")
    var producers = 1
    @Option(help: "Partitions, when the topic is created.")
    var partitions = 1
    @Option(help: "Flush policy, when the topic is created: every-append, interval:MS, messages:N or never.")
    var flush = FlushPolicyArgument(argument: "every-append")!
    @Option(help: "Compression, when the topic is created: none, lz4 or zstd.")
    var compression = CompressionArgument(argument: "none")!
    @Option(help: "Producer batch size in bytes (batch.size).")
    var batchBytes = 16 * 1024
    @Option(help: "Producer linger in milliseconds (linger.ms).")
    var lingerMs = 5
    @Option(help: "Producer buffer in bytes (buffer.memory).")
    var bufferBytes = 32 << 20
    @Option(help: "Seconds between progress lines.")
    var reportInterval = 5
    @Flag(help: "Print the final summary as one JSON object.")
    var json = false

    func validate() throws {
        guard records > 0, recordSize >= 16, producers > 0, partitions > 0, batchBytes > 0, lingerMs >= 0, bufferBytes > 0, reportInterval > 0
        else {
            throw ValidationError("--records, --producers, --partitions, --batch-bytes, --buffer-bytes and --report-interval must be positive, --record-size at least 16")
        }
        guard throughput == -1 || throughput > 0 else { throw ValidationError("--throughput must be positive or -1") }
        guard sendBatch > 0 else { throw ValidationError("--send-batch must be positive") }
        try remote.requireOne(dir: dir)
    }

    @Option(help: "Records per producer call: 1 hands each record over with enqueue(_:), more use enqueue(contentsOf:).")
    var sendBatch = 1

    func run() async throws {
        if let bootstrap = remote.bootstrap { return try await runBootstrap(bootstrap) }
        let samsa = try Samsa.open(directory: dir!)
        defer { try? samsa.close() }
        if !samsa.topics.contains(topic) {
            try samsa.createTopic(topic, TopicConfiguration(partitions: partitions, flushPolicy: flush.policy, compression: compression.codec))
        }
        let topicConfiguration = try samsa.describeTopic(topic).configuration
        var events = SyntheticEvents()
        let payloads = (0..<1024).map { _ in events.next(size: recordSize) }
        let tally = ProduceTally()
        let progress = ProgressReporter(interval: reportInterval, recordSize: recordSize, counter: tally.acknowledged)
        let cpuBefore = processCPUNanoseconds()
        let start = monotonicNanoseconds()
        progress.start()
        try await produceEmbedded(samsa: samsa, payloads: payloads, start: start, tally: tally)
        progress.stop()
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        try samsa.close()
        let cpu = processCPUNanoseconds() - cpuBefore
        let acknowledged = tally.acknowledged.current, failed = tally.failed.current
        let summary = PerfSummary(
            records: acknowledged, bytes: acknowledged * recordSize, seconds: seconds,
            latency: tally.latencies.summary, latencyName: "latency", cpuNanoseconds: cpu)
        if json {
            print(summary.json([
                ("command", .string("produce")), ("topic", .string(topic)), ("record_size", .int(Int64(recordSize))),
                ("producers", .int(Int64(producers))), ("partitions", .int(Int64(topicConfiguration.partitions))),
                ("flush", .string(topicConfiguration.flushPolicy.description)), ("compression", .string(topicConfiguration.compression.description)),
                ("send_batch", .int(Int64(sendBatch))), ("failed", .int(Int64(failed))),
            ]))
        } else {
            print(summary.line)
        }
        if failed > 0 {
            standardError("samsa perf produce: \(failed) records failed")
            throw ExitCode(1)
        }
    }

    /// Sends `--records` through `--producers` embedded producers of `samsa`, recording into `tally`.
    private func produceEmbedded(samsa: Samsa, payloads: [[UInt8]], start: UInt64, tally: ProduceTally) async throws {
        let perProducer = records / producers
        let configuration = ProducerConfiguration(lingerMilliseconds: lingerMs, batchBytes: batchBytes, bufferBytes: bufferBytes)
        let (topic, throughput, producerCount, total, sendBatch) = (self.topic, self.throughput, self.producers, self.records, self.sendBatch)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<producerCount {
                let count = index == producerCount - 1 ? total - perProducer * (producerCount - 1) : perProducer
                group.addTask {
                    let producer = samsa.makeProducer(configuration)
                    let rate = throughput > 0 ? Double(throughput) / Double(producerCount) : 0
                    var run = BatchRun()
                    var chunk: [ProducerRecord] = []
                    chunk.reserveCapacity(sendBatch)
                    var sent = 0
                    while sent < count {
                        if rate > 0 {
                            // Pace: never ahead of the target schedule.
                            let due = start + UInt64(Double(sent) / rate * 1e9)
                            let now = monotonicNanoseconds()
                            if due > now { try await Task.sleep(nanoseconds: due - now) }
                        }
                        if sendBatch == 1 {
                            let delivery = try await producer.enqueue(ProducerRecord(topic: topic, value: payloads[sent & 1023]))
                            run.add(delivery.batch, tally: tally)
                            sent += 1
                        } else {
                            let handedOver = monotonicNanoseconds()
                            let size = min(sendBatch, count - sent)
                            chunk.removeAll(keepingCapacity: true)
                            for index in sent..<(sent + size) { chunk.append(ProducerRecord(topic: topic, value: payloads[index & 1023])) }
                            let acknowledgement = try await producer.enqueue(contentsOf: chunk)
                            for part in acknowledgement.runs { tally.follow(part.batch, count: part.count, handedOver: handedOver) }
                            sent += size
                        }
                    }
                    run.end(tally: tally)
                    await producer.close()
                }
            }
            try await group.waitForAll()
        }
    }
}

/// What `perf produce` counts, recorded once per batch (a count of records with one latency), so
/// measuring costs nothing per record.
final class ProduceTally: Sendable {
    let latencies = LatencyRecorder()
    let acknowledged = Counter()
    let failed = Counter()

    /// Records `count` records of `batch`, the first handed over at `handedOver`, once it resolves:
    /// their latency is counted from that first hand-over (an upper bound for the later ones).
    func follow(_ batch: BatchTicket, count: Int, handedOver: UInt64) {
        batch.whenResolved { [self] outcome in
            if case .success = outcome {
                latencies.record(microseconds: (monotonicNanoseconds() - handedOver) / 1000, count: count)
                acknowledged.add(count)
            } else {
                failed.add(count)
            }
        }
    }
}

/// Consecutive records one producer handed over into the same batch, followed as one.
struct BatchRun {
    private var batch: BatchTicket?
    private var count = 0
    private var handedOver: UInt64 = 0

    /// The clock is read once per batch, when its first record was just handed over.
    mutating func add(_ next: BatchTicket, tally: ProduceTally) {
        if batch === next {
            count += 1
            return
        }
        end(tally: tally)
        (batch, count, handedOver) = (next, 1, monotonicNanoseconds())
    }

    mutating func end(tally: ProduceTally) {
        if let batch { tally.follow(batch, count: count, handedOver: handedOver) }
        batch = nil
    }
}

struct PerfConsume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Read a topic from the beginning and report throughput and read latency.",
        discussion: "Latency is the time of each read of up to --fetch-bytes from one partition."
    )

    @Option(help: "Data directory.")
    var dir: String?
    @OptionGroup var remote: BootstrapOptions
    @Option(help: "Topic name.")
    var topic = "perf"
    @Option(help: "Stop after this many records (default: everything committed when the run starts).")
    var records: Int?
    @Option(help: "Bytes per read from one partition.")
    var fetchBytes = 1 << 20
    @Flag(help: "Read owning records (Samsa.read) instead of scanning in place (Samsa.forEachRecord).")
    var owning = false
    @Option(help: "Seconds between progress lines.")
    var reportInterval = 5
    @Flag(help: "Print the final summary as one JSON object.")
    var json = false

    func validate() throws {
        if let records, records <= 0 { throw ValidationError("--records must be positive") }
        guard fetchBytes > 0, reportInterval > 0 else { throw ValidationError("--fetch-bytes and --report-interval must be positive") }
        try remote.requireOne(dir: dir)
    }

    func run() async throws {
        if let bootstrap = remote.bootstrap { return try await runBootstrap(bootstrap) }
        let samsa = try openExisting(dir!)
        defer { try? samsa.close() }
        let partitions = try samsa.describeTopic(topic).partitions.count
        let latencies = LatencyRecorder()
        let consumed = Counter()
        var bytes = 0
        let limit = records ?? Int.max
        let progress = ProgressReporter(interval: reportInterval, recordSize: nil, counter: consumed)
        progress.start()
        let cpuBefore = processCPUNanoseconds()
        let start = monotonicNanoseconds()
        for partition in 0..<partitions {
            var (position, end) = try samsa.offsets(topic: topic, partition: partition)
            while position < end && consumed.current < limit {
                let before = monotonicNanoseconds()
                let next: Int64
                if owning {
                    next = try readOwning(samsa, partition: partition, from: position, limit: limit - consumed.current, consumed: consumed, bytes: &bytes)
                } else {
                    next = try readInPlace(samsa, partition: partition, from: position, limit: limit - consumed.current, consumed: consumed, bytes: &bytes)
                }
                latencies.record(microseconds: (monotonicNanoseconds() - before) / 1000)
                guard next > position else { break }
                position = next
                if records != nil && position >= end { end = try samsa.offsets(topic: topic, partition: partition).end }
            }
        }
        progress.stop()
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        let summary = PerfSummary(
            records: consumed.current, bytes: bytes, seconds: seconds, latency: latencies.summary, latencyName: "read latency",
            cpuNanoseconds: processCPUNanoseconds() - cpuBefore)
        if json {
            print(summary.json([
                ("command", .string("consume")), ("topic", .string(topic)), ("partitions", .int(Int64(partitions))), ("owning", .bool(owning)),
            ]))
        } else {
            print(summary.line)
        }
    }
}

extension PerfConsume {
    /// One in-place read (no record is copied or allocated); returns the offset to read from next.
    func readInPlace(_ samsa: Samsa, partition: Int, from position: Int64, limit: Int, consumed: Counter, bytes: inout Int) throws -> Int64 {
        var count = 0, seen = 0, next = position
        _ = try samsa.forEachRecord(topic: topic, partition: partition, from: position, maxBytes: fetchBytes) { record in
            guard count < limit else { return }
            seen += (record.key?.count ?? 0) + (record.value?.count ?? 0)
            count += 1
            next = record.offset + 1
        }
        bytes += seen
        consumed.add(count)
        return next
    }

    /// One owning read (`[ConsumerRecord]`); returns the offset to read from next.
    func readOwning(_ samsa: Samsa, partition: Int, from position: Int64, limit: Int, consumed: Counter, bytes: inout Int) throws -> Int64 {
        let read = try samsa.read(topic: topic, partition: partition, from: position, maxBytes: fetchBytes)
        let taken = read.prefix(limit)
        for record in taken { bytes += (record.value?.readableBytes ?? 0) + (record.key?.readableBytes ?? 0) }
        consumed.add(taken.count)
        return taken.last.map { $0.offset + 1 } ?? position
    }
}

/// A count shared between the threads that bump it and the reporter that reads it.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func add(_ count: Int) { value.add(count, ordering: .relaxed) }
    var current: Int { value.load(ordering: .relaxed) }
}

/// Prints a progress line to standard error every few seconds, from a timer.
final class ProgressReporter: Sendable {
    private let interval: Int
    private let recordSize: Int?
    private let counter: Counter
    private let timer = Mutex<(any DispatchSourceTimer)?>(nil)
    private let last = Mutex<(count: Int, time: UInt64)>((0, 0))

    init(interval: Int, recordSize: Int?, counter: Counter) {
        self.interval = interval
        self.recordSize = recordSize
        self.counter = counter
    }

    func start() {
        last.withLock { $0 = (0, monotonicNanoseconds()) }
        timer.withLock { slot in
            let source = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
            source.schedule(deadline: .now() + .seconds(interval), repeating: .seconds(interval))
            source.setEventHandler { [self] in report() }
            source.resume()
            slot = source
        }
    }

    private func report() {
        let now = monotonicNanoseconds()
        let count = counter.current
        let (previous, then) = last.withLock { state in
            defer { state = (count, now) }
            return state
        }
        let rate = Double(count - previous) / (Double(now - then) / 1e9)
        var line = "\(count) records, \(format(rate, 1)) records/sec"
        if let recordSize { line += " (\(format(rate * Double(recordSize) / 1e6)) MB/sec)" }
        standardError(line)
    }

    func stop() {
        timer.withLock { $0?.cancel() }
    }
}
