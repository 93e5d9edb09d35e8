import Logging
import NIOPosix
import SamsaRecords
import SamsaStorage
import Synchronization

/// Deletes whole old segments of every partition whose topic sets `retention.ms` or `retention.bytes`
/// (Kafka's retention check, every `log.retention.check.interval.ms`). The active segment always stays,
/// as in Kafka, and a deleted segment's files are renamed at once and unlinked in the background, so a
/// fetch reading them is not cut off. The file work runs on the I/O pool.
final class LogRetention: Sendable {
    private let logs: LogManager
    private let io: NIOThreadPool
    private let logger: Logger
    private let tasks = BackgroundTasks()

    init(logs: LogManager, io: NIOThreadPool, logger: Logger) {
        self.logs = logs
        self.io = io
        self.logger = logger
    }

    /// Runs `enforce` every `interval` until `stop` (none for a zero interval).
    func start(every interval: Duration) {
        guard interval > .zero else { return }
        tasks.start { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                _ = await enforce()
            }
        }
    }

    /// Cancels the checks and waits for one under way (the logs close after this).
    func stop() async {
        await tasks.stop()
    }

    /// One pass over every partition with a retention limit; returns how many segments went. A
    /// partition that fails (disk trouble) is logged and retried on the next pass.
    @discardableResult
    func enforce(nowMilliseconds now: Int64 = WallClock.nowMilliseconds) async -> Int {
        let logs = logs
        let limited = logs.partitions.compactMap { partition -> (TopicPartition, PartitionLog)? in
            guard let log = logs.log(partition), log.configuration.retentionBytes != nil || log.configuration.retentionMilliseconds != nil
            else { return nil }
            return (partition, log)
        }
        var removed = 0
        for (partition, partitionLog) in limited {
            if Task.isCancelled { break }
            do {
                removed += try await io.runIfActive { try partitionLog.applyRetention(nowMilliseconds: now) }
            } catch {
                logger.warning(
                    "retention failed (retried at the next check)",
                    metadata: ["topic": "\(partition.topic)", "partition": "\(partition.partition)", "error": "\(error)"])
            }
        }
        return removed
    }
}
