import ArgumentParser
import NIOCore
import SamsaClient
import SamsaProtocol
import SamsaRecords
import Synchronization

/// `--bootstrap` and the settings that only a remote broker has; `samsa perf` drives a Kafka-protocol
/// broker with the Swift client when it is given, else the data directory of `--dir`.
struct BootstrapOptions: ParsableArguments {
    @Option(help: "HOST:PORT[,HOST:PORT...] of a Kafka-protocol broker to drive instead of a data directory.")
    var bootstrap: String?
    @Option(parsing: .unconditional, help: "With --bootstrap: acknowledgements to wait for: 0, 1 or -1 (all).")
    var acks: Int16 = -1
    @Option(help: "With --bootstrap: Produce requests in flight per connection.")
    var maxInFlight = 5
    @Option(help: "With --bootstrap: bytes ready before a second request goes to a broker with one in flight (0: whenever a slot is free).")
    var pipelineBytes = 256 << 10

    func validate() throws {
        guard Acks(rawValue: acks) != nil else { throw ValidationError("--acks must be 0, 1 or -1") }
        guard maxInFlight > 0 else { throw ValidationError("--max-in-flight must be positive") }
        guard pipelineBytes >= 0 else { throw ValidationError("--pipeline-bytes must not be negative") }
        if let bootstrap, BrokerAddress.list(bootstrap) == nil { throw ValidationError("--bootstrap expects HOST:PORT[,HOST:PORT...]") }
    }

    /// Exactly one of `--dir` and `--bootstrap`.
    func requireOne(dir: String?) throws {
        guard (dir == nil) != (bootstrap == nil) else { throw ValidationError("give either --dir or --bootstrap") }
    }
}

extension PerfProduce {
    /// The produce run against a broker: each producer task has its own client (connection).
    func runBootstrap(_ bootstrap: String) async throws {
        let topic = self.topic, throughput = self.throughput, producerCount = self.producers, total = self.records
        let admin = try await KafkaClient.connect(bootstrap: bootstrap, configuration: ClientConfiguration(clientId: "samsa-perf"))
        defer { Task { [admin] in await admin.close() } }
        if try await !admin.listTopics().contains(where: { $0.name == topic }) {
            do {
                try await admin.createTopics([NewTopic(name: topic, partitions: Int32(partitions))])
            } catch KafkaClientError.broker(.topicAlreadyExists, _) {}
        }
        let partitionCount = try await admin.topicMetadata(topic).partitions.count
        var events = SyntheticEvents()
        let payloads = (0..<1024).map { _ in ByteBuffer(bytes: events.next(size: recordSize)) }
        let latencies = LatencyRecorder()
        let acknowledged = Counter()
        let failed = Counter()
        let firstError = FirstError()
        let progress = ProgressReporter(interval: reportInterval, recordSize: recordSize, counter: acknowledged)
        let configuration = KafkaProducerConfiguration(
            acks: Acks(rawValue: remote.acks)!, compression: compression.codec, lingerMilliseconds: Int64(lingerMs), batchBytes: batchBytes,
            bufferBytes: bufferBytes, maxInFlightPerConnection: remote.maxInFlight,
            pipelineBytes: remote.pipelineBytes)
        let perProducer = total / producerCount
        var clients: [KafkaClient] = []
        for _ in 0..<producerCount {
            clients.append(try await KafkaClient.connect(bootstrap: bootstrap, configuration: ClientConfiguration(clientId: "samsa-perf")))
        }
        let cpuBefore = processCPUNanoseconds()
        let start = monotonicNanoseconds()
        progress.start()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, client) in clients.enumerated() {
                let count = index == producerCount - 1 ? total - perProducer * (producerCount - 1) : perProducer
                group.addTask {
                    // Each record's latency: from its own hand-over (its opaque) to the moment its batch's
                    // acknowledgement is handled, one clock read and one histogram lock per batch.
                    let producer = client.makeProducer(configuration) { report in
                        switch report.result {
                        case .success:
                            latencies.record(since: report.opaques, now: monotonicNanoseconds())
                            acknowledged.add(report.recordCount)
                        case .failure(let error):
                            firstError.set(error)
                            failed.add(report.recordCount)
                        }
                    }
                    let rate = throughput > 0 ? Double(throughput) / Double(producerCount) : 0
                    // Record timestamps from the hand-over clock read (one clock read per record, not two).
                    let wallStart = WallClock.nowMilliseconds, monotonicStart = monotonicNanoseconds()
                    for sent in 0..<count {
                        var handedOver = monotonicNanoseconds()
                        if rate > 0 {
                            // Pace: never more than a millisecond ahead of the target schedule (a sleep per
                            // record would cost more than the record).
                            let due = start + UInt64(Double(sent) / rate * 1e9)
                            if due > handedOver + 1_000_000 {
                                try await Task.sleep(nanoseconds: due - handedOver)
                                handedOver = monotonicNanoseconds()
                            }
                        }
                        let timestamp = wallStart + Int64((handedOver &- monotonicStart) / 1_000_000)
                        let value = payloads[sent & 1023]
                        // The synchronous path while the buffer has room; `send` (which may wait) otherwise.
                        if try !producer.trySend(topic: topic, value: value, timestamp: timestamp, opaque: handedOver) {
                            try await producer.send(topic: topic, value: value, timestamp: timestamp, opaque: handedOver)
                        }
                    }
                    await producer.close()
                }
            }
            try await group.waitForAll()
        }
        progress.stop()
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        for client in clients { await client.close() }
        let summary = PerfSummary(
            records: acknowledged.current, bytes: acknowledged.current * recordSize, seconds: seconds, latency: latencies.summary,
            latencyName: "latency", cpuNanoseconds: processCPUNanoseconds() - cpuBefore)
        if json {
            print(summary.json([
                ("command", .string("produce")), ("topic", .string(topic)), ("record_size", .int(Int64(recordSize))),
                ("producers", .int(Int64(producers))), ("partitions", .int(Int64(partitionCount))), ("bootstrap", .string(bootstrap)),
                ("acks", .int(Int64(remote.acks))), ("compression", .string(compression.codec.description)),
                ("failed", .int(Int64(failed.current))),
            ]))
        } else {
            print(summary.line)
        }
        if failed.current > 0 {
            standardError("samsa perf produce: \(failed.current) records failed; the first: \(firstError.value.map { "\($0)" } ?? "?")")
            throw ExitCode(1)
        }
    }
}

extension PerfConsume {
    /// The consume run against a broker: every partition from its log start to the end offset found at
    /// the start (or `--records`), one fetch in flight ahead of the records being counted.
    func runBootstrap(_ bootstrap: String) async throws {
        let client = try await KafkaClient.connect(bootstrap: bootstrap, configuration: ClientConfiguration(clientId: "samsa-perf"))
        do {
            try await consume(client)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }

    private func consume(_ client: KafkaClient) async throws {
        let partitions = try await client.topicMetadata(topic).partitions.map(\.partition)
        let latencies = LatencyRecorder()
        let consumed = Counter()
        var bytes = 0
        let limit = records ?? Int.max
        let fetchBytes = Int32(clamping: self.fetchBytes)
        let topic = self.topic
        let progress = ProgressReporter(interval: reportInterval, recordSize: nil, counter: consumed)
        progress.start()
        let cpuBefore = processCPUNanoseconds()
        let start = monotonicNanoseconds()
        for partition in partitions {
            var position = try await client.listOffset(topic: topic, partition: partition, .earliest)
            var end = try await client.listOffset(topic: topic, partition: partition, .latest)
            // Asks for the next fetch before counting the last one's records, as a consumer prefetches.
            let timedFetch: @Sendable (Int64) async throws -> FetchedPartition = { offset in
                let before = monotonicNanoseconds()
                let fetched = try await client.fetch(
                    topic: topic, partition: partition, offset: offset, maxWaitMilliseconds: 500, minBytes: 1, maxBytes: fetchBytes)
                latencies.record(microseconds: (monotonicNanoseconds() - before) / 1000)
                return fetched
            }
            var pending: Task<FetchedPartition, any Error>? = position < end ? Task { [position] in try await timedFetch(position) } : nil
            while let current = pending, consumed.current < limit {
                let fetched = try await current.value
                pending = nil
                if records != nil && fetched.nextOffset >= end { end = max(end, fetched.highWatermark) }
                let next = fetched.nextOffset
                if next < end && next > position { pending = Task { try await timedFetch(next) } }
                var taken = 0
                let wanted = limit - consumed.current
                try fetched.forEachRecord { record in
                    guard taken < wanted, record.offset < end else { return }
                    bytes += (record.value?.count ?? 0) + (record.key?.count ?? 0)
                    taken += 1
                }
                consumed.add(taken)
                if next <= position { break }
                position = next
            }
            pending?.cancel()
        }
        progress.stop()
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        let summary = PerfSummary(
            records: consumed.current, bytes: bytes, seconds: seconds, latency: latencies.summary, latencyName: "fetch latency",
            cpuNanoseconds: processCPUNanoseconds() - cpuBefore)
        if json {
            print(summary.json([
                ("command", .string("consume")), ("topic", .string(topic)), ("partitions", .int(Int64(partitions.count))),
                ("bootstrap", .string(remote.bootstrap ?? "")),
            ]))
        } else {
            print(summary.line)
        }
    }
}

/// The first delivery error of a run, for the final message.
final class FirstError: Sendable {
    private let slot = Mutex<KafkaClientError?>(nil)
    func set(_ error: KafkaClientError) { slot.withLock { if $0 == nil { $0 = error } } }
    var value: KafkaClientError? { slot.withLock { $0 } }
}
