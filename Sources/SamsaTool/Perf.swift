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
        _ = histogram.withLock { $0.record(max(1, microseconds)) }
        total.add(microseconds, ordering: .relaxed)
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

    var line: String {
        "\(records) records, \(format(Double(records) / seconds, 1)) records/sec (\(format(Double(bytes) / seconds / 1e6)) MB/sec), "
            + "\(latencyName) avg \(format(latency.average)) ms, p50 \(format(latency.p50)) ms, p99 \(format(latency.p99)) ms, "
            + "p99.9 \(format(latency.p999)) ms, max \(format(latency.max)) ms"
    }

    func json(_ extra: [(String, JSONLine.Value)]) -> String {
        JSONLine(
            extra + [
                ("records", .int(Int64(records))), ("bytes", .int(Int64(bytes))), ("seconds", .double(seconds)),
                ("records_per_sec", .double(Double(records) / seconds)), ("mb_per_sec", .double(Double(bytes) / seconds / 1e6)),
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
        try remote.requireOne(dir: dir)
    }

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
        let latencies = LatencyRecorder()
        let acknowledged = Counter()
        let failed = Counter()
        let progress = ProgressReporter(interval: reportInterval, recordSize: recordSize, counter: acknowledged)
        let start = monotonicNanoseconds()
        let perProducer = records / producers
        let configuration = ProducerConfiguration(lingerMilliseconds: lingerMs, batchBytes: batchBytes, bufferBytes: bufferBytes)
        let topic = self.topic
        let throughput = self.throughput
        let producerCount = self.producers
        let total = self.records
        progress.start()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<producerCount {
                let count = index == producerCount - 1 ? total - perProducer * (producerCount - 1) : perProducer
                group.addTask {
                    let producer = samsa.makeProducer(configuration)
                    let rate = throughput > 0 ? Double(throughput) / Double(producerCount) : 0
                    for sent in 0..<count {
                        if rate > 0 {
                            // Pace: never ahead of the target schedule.
                            let due = start + UInt64(Double(sent) / rate * 1e9)
                            let now = monotonicNanoseconds()
                            if due > now { try await Task.sleep(nanoseconds: due - now) }
                        }
                        let handedOver = monotonicNanoseconds()
                        let delivery = try await producer.enqueue(ProducerRecord(topic: topic, value: payloads[sent & 1023]))
                        delivery.whenResolved { outcome in
                            if case .success = outcome {
                                latencies.record(microseconds: (monotonicNanoseconds() - handedOver) / 1000)
                                acknowledged.add(1)
                            } else {
                                failed.add(1)
                            }
                        }
                    }
                    await producer.close()
                }
            }
            try await group.waitForAll()
        }
        progress.stop()
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        try samsa.close()
        let summary = PerfSummary(
            records: acknowledged.current, bytes: acknowledged.current * recordSize, seconds: seconds,
            latency: latencies.summary, latencyName: "latency")
        if json {
            print(summary.json([
                ("command", .string("produce")), ("topic", .string(topic)), ("record_size", .int(Int64(recordSize))),
                ("producers", .int(Int64(producers))), ("partitions", .int(Int64(topicConfiguration.partitions))),
                ("flush", .string(topicConfiguration.flushPolicy.description)), ("compression", .string(topicConfiguration.compression.description)),
                ("failed", .int(Int64(failed.current))),
            ]))
        } else {
            print(summary.line)
        }
        if failed.current > 0 {
            standardError("samsa perf produce: \(failed.current) records failed")
            throw ExitCode(1)
        }
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
        let start = monotonicNanoseconds()
        for partition in 0..<partitions {
            var (position, end) = try samsa.offsets(topic: topic, partition: partition)
            while position < end && consumed.current < limit {
                let before = monotonicNanoseconds()
                let read = try samsa.read(topic: topic, partition: partition, from: position, maxBytes: fetchBytes)
                latencies.record(microseconds: (monotonicNanoseconds() - before) / 1000)
                guard let last = read.last else { break }
                let taken = read.prefix(limit - consumed.current)
                for record in taken { bytes += (record.value?.readableBytes ?? 0) + (record.key?.readableBytes ?? 0) }
                consumed.add(taken.count)
                position = last.offset + 1
                if records != nil && position >= end { end = try samsa.offsets(topic: topic, partition: partition).end }
            }
        }
        progress.stop()
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        let summary = PerfSummary(
            records: consumed.current, bytes: bytes, seconds: seconds, latency: latencies.summary, latencyName: "read latency")
        if json {
            print(summary.json([("command", .string("consume")), ("topic", .string(topic)), ("partitions", .int(Int64(partitions)))]))
        } else {
            print(summary.line)
        }
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
