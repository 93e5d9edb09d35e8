import Foundation
import ArgumentParser
import Samsa
import SamsaRecords
import SamsaStorage

/// `samsa topics create|list|describe|delete --dir DIR ...` (or `--bootstrap HOST:PORT` for a broker).
struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list, describe and delete the topics of a data directory or a Kafka-protocol broker.",
        subcommands: [Create.self, List.self, Describe.self, Alter.self, AddPartitions.self, Delete.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a topic.")

        @Option(help: "Data directory (created if absent).")
        var dir: String?
        @OptionGroup var remote: TopicsBootstrapOptions
        @OptionGroup var remoteSettings: RemoteTopicSettings
        @Option(help: "Topic name (1-249 of a-z A-Z 0-9 . _ -).")
        var topic: String
        @Option(help: "Number of partitions.")
        var partitions = 1
        @Option(help: "Flush policy: every-append, interval:MS, messages:N or never.")
        var flush = FlushPolicyArgument(argument: "every-append")!
        @Option(help: "Batch compression: none, lz4 or zstd.")
        var compression = CompressionArgument(argument: "none")!
        @Option(help: "Largest record a producer may send, in bytes.")
        var maxRecordBytes = 1 << 20
        @Option(help: "Segment size in bytes.")
        var segmentBytes = 1 << 30
        @Option(help: "Delete old segments while a partition is larger than this many bytes.")
        var retentionBytes: Int64?
        @Option(name: .customLong("retention-ms"), help: "Delete segments whose newest record is older than this many milliseconds.")
        var retentionMilliseconds: Int64?
        @Option(help: "Zeros kept synced ahead of appends, in bytes (0: off); speeds up small durable appends.")
        var writeAheadBytes = 0
        @Option(help: "delete (retention), compact (the latest record per key; records need keys) or compact,delete.")
        var cleanupPolicy = CleanupPolicyArgument(argument: "delete")!
        @Option(name: .customLong("delete-retention-ms"), help: "With compact: how long a tombstone stays readable after the clean that kept it.")
        var deleteRetentionMilliseconds: Int64 = 86_400_000
        @Option(help: "With compact: clean a partition once this share of it is dirty (0-1).")
        var minCleanableDirtyRatio = 0.5
        @Option(name: .customLong("min-compaction-lag-ms"), help: "With compact: records younger than this are not compacted away.")
        var minCompactionLagMilliseconds: Int64 = 0
        @Option(name: .customLong("segment-ms"), help: "Roll the active segment once it is this old (so its records become cleanable).")
        var segmentMilliseconds: Int64?

        func validate() throws {
            try remote.requireOne(dir: dir)
            if remote.bootstrap == nil && (remoteSettings.replicationFactor != nil || !remoteSettings.config.isEmpty) {
                throw ValidationError("--replication-factor and --config need --bootstrap")
            }
            // `samsa produce` holds at most its buffer of records: a larger record could never be sent.
            let buffer = ProducerConfiguration().bufferBytes
            guard maxRecordBytes <= buffer else {
                throw ValidationError("--max-record-bytes must be at most \(buffer) (the producer's buffer), not \(maxRecordBytes)")
            }
        }

        func run() async throws {
            if let bootstrap = remote.bootstrap { return try await createRemote(bootstrap) }
            let samsa = try Samsa.open(directory: dir!)
            defer { try? samsa.close() }
            try samsa.createTopic(
                topic,
                TopicConfiguration(
                    partitions: partitions, flushPolicy: flush.policy, compression: compression.codec, maxRecordBytes: maxRecordBytes,
                    segmentBytes: segmentBytes, retentionBytes: retentionBytes, retentionMilliseconds: retentionMilliseconds,
                    writeAheadBytes: writeAheadBytes, cleanupPolicy: cleanupPolicy.policy, deleteRetentionMilliseconds: deleteRetentionMilliseconds,
                    minCleanableDirtyRatio: minCleanableDirtyRatio, minCompactionLagMilliseconds: minCompactionLagMilliseconds,
                    segmentMilliseconds: segmentMilliseconds))
            try samsa.close()
            print("created topic \(topic) with \(partitions) partition\(partitions == 1 ? "" : "s")")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the topics, one per line.")

        @Option(help: "Data directory.")
        var dir: String?
        @OptionGroup var remote: TopicsBootstrapOptions

        func validate() throws { try remote.requireOne(dir: dir) }

        func run() async throws {
            if let bootstrap = remote.bootstrap { return try await listRemote(bootstrap) }
            let samsa = try openForReading(dir!)
            defer { try? samsa.close() }
            for topic in samsa.topics { print(topic) }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a topic's configuration and partitions.")

        @Option(help: "Data directory.")
        var dir: String?
        @OptionGroup var remote: TopicsBootstrapOptions
        @Option(help: "Topic name; all topics when omitted.")
        var topic: String?
        @Flag(help: "Only partitions with fewer in-sync replicas than replicas (with --bootstrap).")
        var underReplicatedPartitions = false
        @Flag(help: "With --bootstrap: one JSON object per topic (partitions and configs with their sources).")
        var json = false

        func validate() throws {
            try remote.requireOne(dir: dir)
            if underReplicatedPartitions && remote.bootstrap == nil { throw ValidationError("--under-replicated-partitions needs --bootstrap") }
        }

        func run() async throws {
            if let bootstrap = remote.bootstrap { return try await describeRemote(bootstrap) }
            let samsa = try openForReading(dir!)
            defer { try? samsa.close() }
            for name in topic.map({ [$0] }) ?? samsa.topics {
                let description = try samsa.describeTopic(name)
                let c = description.configuration
                var settings = "partitions=\(c.partitions) flush=\(c.flushPolicy) compression=\(c.compression) max-record-bytes=\(c.maxRecordBytes) segment-bytes=\(c.segmentBytes)"
                if let bytes = c.retentionBytes { settings += " retention-bytes=\(bytes)" }
                if let ms = c.retentionMilliseconds { settings += " retention-ms=\(ms)" }
                if c.writeAheadBytes > 0 { settings += " write-ahead-bytes=\(c.writeAheadBytes)" }
                if let ms = c.segmentMilliseconds { settings += " segment-ms=\(ms)" }
                settings += " cleanup-policy=\(c.cleanupPolicy)"
                if c.cleanupPolicy.compacts {
                    settings += " delete-retention-ms=\(c.deleteRetentionMilliseconds) min-cleanable-dirty-ratio=\(c.minCleanableDirtyRatio)"
                    settings += " min-compaction-lag-ms=\(c.minCompactionLagMilliseconds)"
                }
                print("topic \(name): \(settings)")
                for p in description.partitions {
                    var line = "  partition \(p.partition): start \(p.logStartOffset), end \(p.logEndOffset), flushed \(p.flushedOffset), \(p.sizeInBytes) bytes in \(p.segments) segment\(p.segments == 1 ? "" : "s")"
                    if let cleaning = p.cleaning {
                        line += String(format: ", dirty ratio %.3f, cleaned below %lld", cleaning.dirtyRatio, cleaning.cleanPoint)
                        if let at = cleaning.lastCleanMilliseconds { line += ", last clean at \(Date(timeIntervalSince1970: Double(at) / 1000))" }
                    }
                    print(line)
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a topic and its records.")

        @Option(help: "Data directory.")
        var dir: String?
        @OptionGroup var remote: TopicsBootstrapOptions
        @Option(help: "Topic name.")
        var topic: String

        func validate() throws { try remote.requireOne(dir: dir) }

        func run() async throws {
            if let bootstrap = remote.bootstrap { return try await deleteRemote(bootstrap) }
            let samsa = try openExisting(dir!)
            defer { try? samsa.close() }
            try samsa.deleteTopic(topic)
            try samsa.close()
            print("deleted topic \(topic)")
        }
    }
}

/// Opens a data directory that must exist already, for writing (takes the directory's lock).
func openExisting(_ directory: String) throws -> Samsa {
    guard PosixFileSystem().fileExists(directory) else { throw ValidationError("no such data directory: \(directory)") }
    return try Samsa.open(directory: directory)
}

/// Opens a data directory that must exist already, read-only: no lock, nothing written, so it runs
/// beside a producer and on a read-only copy.
func openForReading(_ directory: String) throws -> Samsa {
    guard PosixFileSystem().fileExists(directory) else { throw ValidationError("no such data directory: \(directory)") }
    return try Samsa.openReadOnly(directory: directory)
}

/// `--compression none|lz4|zstd`.
struct CompressionArgument: ExpressibleByArgument {
    let codec: CompressionCodec

    init?(argument: String) {
        guard let codec = CompressionCodec(name: argument), codec.isSupported else { return nil }
        self.codec = codec
    }

    static var allValueStrings: [String] { ["none", "lz4", "zstd"] }
}

/// `--cleanup-policy`: Kafka's spelling (`delete`, `compact`, `compact,delete`).
struct CleanupPolicyArgument: ExpressibleByArgument {
    let policy: CleanupPolicy
    init?(argument: String) {
        guard let policy = CleanupPolicy(argument) else { return nil }
        self.policy = policy
    }
}
