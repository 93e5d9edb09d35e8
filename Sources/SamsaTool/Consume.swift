import ArgumentParser
import NIOCore
import Samsa
import SamsaStorage

/// `samsa consume --dir DIR --topic T`: prints records.
struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the records of a topic.",
        discussion: """
            Without --group, reads every partition: from the beginning with --from-beginning, else only \
            records that arrive from now on (as kafka-console-consumer); it opens the directory read-only, \
            so it runs beside a producer in another process (and on a read-only copy). With --group, reads \
            the partitions the group assigns, resuming from its committed offsets, and commits what it \
            printed (durably, before reading on); it too runs beside a producer, and beside consumers of \
            other groups, but one process at a time consumes a group: a second is refused (it holds \
            <dir>/groups/<group>.lock, which the kernel releases however the process ends). Stops at \
            the end of the log unless --follow is given. Exits 1 when the output cannot be \
            written (a group then commits only what was written); ^C or SIGTERM stops it cleanly (130/143).
            """
    )

    @Option(help: "Data directory.")
    var dir: String
    @Option(help: "Topic name.")
    var topic: String
    @Option(help: "Consumer group: resume from its committed offsets and commit what is printed.")
    var group: String?
    @Flag(help: "Start at the first retained record (where nothing is committed).")
    var fromBeginning = false
    @Option(help: "Stop after printing this many records.")
    var maxRecords: Int?
    @Flag(help: "Print each record as a JSON object on one line.")
    var json = false
    @Flag(help: "Print each record's key before its value, separated by a tab.")
    var printKey = false
    @Flag(help: "Keep waiting for new records.")
    var follow = false

    func validate() throws {
        if let maxRecords, maxRecords <= 0 { throw ValidationError("--max-records must be positive") }
    }

    func run() async throws {
        let stop = StopSignals()
        ignoreBrokenPipes()
        // Both run beside a producer: plain reading writes nothing; a group writes only its offsets,
        // under its own lock.
        let samsa = try group == nil ? openForReading(dir) : openForConsuming(dir)
        defer { try? samsa.close() }
        let command = self
        let work = Task { try await command.consume(samsa) }
        stop.whenStopped { work.cancel() }
        do {
            try await work.value
        } catch is CancellationError {}
        try samsa.close()
        if let status = stop.exitStatus { throw ExitCode(status) }
    }

    /// Prints until the limit, the end of the log (without --follow) or cancellation (a stop signal:
    /// a group then commits what was printed, as at any other end).
    private func consume(_ samsa: Samsa) async throws {
        let partitions = try samsa.describeTopic(topic).partitions.count
        var output = LineWriter()
        var printed = 0
        let limit = maxRecords ?? Int.max
        /// Prints records up to the limit; returns those written completely, and the write error that
        /// stopped it, if one did.
        func emit(_ records: [ConsumerRecord]) -> (written: ArraySlice<ConsumerRecord>, error: LineWriter.WriteError?) {
            let taken = records.prefix(limit - printed)
            let before = output.linesWritten
            var failure: LineWriter.WriteError?
            do throws(LineWriter.WriteError) {
                for record in taken { try output.line(render(record)) }
                try output.flush()
            } catch {
                failure = error
            }
            let written = taken.prefix(output.linesWritten - before)
            printed += written.count
            return (written, failure)
        }
        if let group {
            let consumer = try samsa.consumer(
                group: group, topics: [topic], configuration: ConsumerConfiguration(startPosition: fromBeginning ? .earliest : .latest, autoCommit: false))
            defer { try? consumer.close() }
            while printed < limit {
                let records: [ConsumerRecord]
                do {
                    records = try await consumer.poll(timeout: follow ? .seconds(3600) : .milliseconds(200))
                } catch is CancellationError {
                    break
                }
                if records.isEmpty && !follow { break }
                // Commit exactly what was printed: the next run starts after it, and a record that did
                // not reach the output (a full disk, a closed pipe) is not committed.
                let (written, failure) = emit(records)
                var offsets: [TopicPartition: Int64] = [:]
                for record in written { offsets[TopicPartition(topic: topic, partition: Int32(record.partition))] = record.offset + 1 }
                try samsa.commit(group: group, offsets: offsets)
                if let failure { throw failure }
            }
            try consumer.close()
            return
        }
        var positions = try (0..<partitions).map { partition in
            let (start, end) = try samsa.offsets(topic: topic, partition: partition)
            return fromBeginning ? start : end
        }
        let ends = try (0..<partitions).map { try samsa.offsets(topic: topic, partition: $0).end }
        // Read to the end as of now, partition by partition.
        for partition in 0..<partitions where printed < limit {
            while printed < limit && positions[partition] < ends[partition] {
                try Task.checkCancellation()
                let records = try samsa.read(topic: topic, partition: partition, from: positions[partition])
                guard let last = records.last else { break }
                positions[partition] = last.offset + 1
                if let failure = emit(records.filter { $0.offset < ends[partition] }).error { throw failure }
            }
        }
        guard follow && printed < limit else { return }
        // One tailing task per partition feeds the printer; they end when it has enough or is stopped.
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            let stream = AsyncStream<[ConsumerRecord]>.makeStream()
            for partition in 0..<partitions {
                let start = positions[partition]
                let topic = self.topic
                tasks.addTask {
                    do {
                        for try await record in samsa.records(topic: topic, partition: partition, from: start) {
                            stream.continuation.yield([record])
                        }
                    } catch {
                        if !(error is CancellationError) { standardError("samsa consume: partition \(partition): \(error)") }
                    }
                }
            }
            defer { tasks.cancelAll() }
            for await records in stream.stream {
                if let failure = emit(records).error { throw failure }
                if printed >= limit { break }
            }
        }
    }

    private func render(_ record: ConsumerRecord) -> String {
        if json {
            var headers: [(String, JSONLine.Value)] = []
            for header in record.headers { headers.append((header.key, header.value.map { .string(String(buffer: $0)) } ?? .null)) }
            return JSONLine([
                ("partition", .int(Int64(record.partition))), ("offset", .int(record.offset)), ("timestamp", .int(record.timestamp)),
                ("key", record.keyString.map(JSONLine.Value.string) ?? .null), ("value", record.valueString.map(JSONLine.Value.string) ?? .null),
                ("headers", .object(headers)),
            ]).rendered
        }
        let value = record.valueString ?? ""
        return printKey ? "\(record.keyString ?? "")\t\(value)" : value
    }
}

/// Opens a data directory that must exist already, to consume as a group beside its writer.
func openForConsuming(_ directory: String) throws -> Samsa {
    guard PosixFileSystem().fileExists(directory) else { throw ValidationError("no such data directory: \(directory)") }
    return try Samsa.openForConsuming(directory: directory)
}
