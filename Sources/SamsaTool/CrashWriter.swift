import ArgumentParser
import Glibc
import NIOCore
import Samsa
import SamsaRecords
import SamsaStorage

/// `samsa crash-writer`: appends batches to one partition until killed, printing a line per
/// acknowledged batch (`<baseOffset> <lastOffset> <crc>`) as soon as the flush policy acknowledges it.
/// The child process of crash tests: kill it with SIGKILL at any moment, reopen the directory, and every
/// printed batch must be there, byte for byte (the CRC covers every record).
struct CrashWriter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash-writer",
        abstract: "Append batches until killed, printing each acknowledged batch (for crash tests)."
    )

    @Option(help: "Data directory (opened with recovery, created if absent).")
    var dir: String

    @Option(help: "Flush policy: every-append, interval:MS, messages:N or never.")
    var flush: FlushPolicyArgument = FlushPolicyArgument(argument: "every-append")!

    @Option(help: "Concurrent appenders.")
    var appenders = 4

    @Option(help: "Records per batch.")
    var recordsPerBatch = 10

    @Option(help: "Segment size in bytes (small values exercise rolling).")
    var segmentBytes = 256 * 1024

    @Option(help: "Stop after this many batches per appender (default: run until killed).")
    var batches: Int?

    @Option(help: "Zeros kept written ahead of the append position, in bytes (0: off).")
    var writeAhead = 0

    static let partition = TopicPartition(topic: "crash", partition: 0)

    func run() async throws {
        let configuration = LogConfiguration(segmentBytes: segmentBytes, flushPolicy: flush.policy, writeAheadBytes: writeAhead)
        // A writer like any other: it takes the directory's lock, so it cannot run beside a producer
        // (or another crash-writer) and corrupt what that one writes.
        try DataDirectory.prepare(dir, files: PosixFileSystem())
        let lock = try DirectoryLock(directory: dir)
        defer { lock.release() }
        let (manager, report) = try LogManager.open(directory: dir, configuration: configuration, configurations: [Self.partition: configuration])
        if let recovery = report.partitions[Self.partition] {
            standardError("crash-writer: opened (clean: \(report.cleanShutdown)); recovery \(recovery)")
        }
        let log = try manager.createLog(Self.partition, configuration: configuration)
        let limit = batches ?? Int.max
        let perBatch = recordsPerBatch
        try await withThrowingTaskGroup(of: Void.self) { group in
            for appender in 0..<appenders {
                group.addTask {
                    var events = SyntheticEvents(seed: UInt64(appender) &* 7919 &+ UInt64(getpid()))
                    var builder = RecordBatchBuilder(compression: appender % 2 == 0 ? .none : .lz4)
                    for _ in 0..<limit {
                        for _ in 0..<perBatch {
                            builder.append(timestamp: Int64(time(nil)) * 1000, key: events.nextKey(), value: events.next(size: 200))
                        }
                        let batch = try builder.build()
                        let result = try await log.append(batch)
                        acknowledge("\(result.baseOffset) \(result.lastOffset) \(batch.crc)")
                    }
                }
            }
            try await group.waitForAll()
        }
        try manager.close()
    }
}

/// One line to stdout, written at once (no buffering: the process may be killed right after).
private func acknowledge(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}
