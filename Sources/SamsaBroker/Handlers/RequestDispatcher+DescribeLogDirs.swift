import Glibc
import SamsaProtocol
import SamsaStorage

extension RequestDispatcher {
    /// DescribeLogDirs (v1-4; Kafka's `ReplicaManager.describeLogDirs`): the broker's one data
    /// directory, with each asked partition held here: its size in bytes, its offset lag (Kafka's
    /// `getLogEndOffsetLag`: how far the log end is below the high watermark, 0 for a current
    /// replica) and isFutureKey false (no replica moves between directories here). Topics null: every
    /// partition; partitions not held here (unknown topics too) are left out, as Kafka leaves them.
    /// v4's totalBytes and usableBytes come from statvfs, on the I/O pool; if that fails the
    /// directory is answered KAFKA_STORAGE_ERROR, as Kafka answers an offline directory.
    /// Bounds: the work is one lookup per named partition (the request size limit bounds them) plus
    /// one size sum per partition held here.
    func describeLogDirs(_ request: DescribeLogDirsRequest) async -> DescribeLogDirsResponse {
        let held = topics.allPartitions.sorted { $0.id < $1.id }
        let wanted: [Partition]
        if let named = request.topics {
            var asked = Set<TopicPartition>()
            for topic in named {
                for index in topic.partitions { asked.insert(TopicPartition(topic: topic.topic, partition: index)) }
            }
            wanted = held.filter { asked.contains($0.id) }
        } else {
            wanted = held
        }
        var result = DescribeLogDirsResponse.DescribeLogDirsResult()
        result.logDir = Self.absolutePath(configuration.dataDirectory)
        do {
            let directory = configuration.dataDirectory
            let space = try await onIOThread { try Self.space(of: directory) }
            result.totalBytes = space.total
            result.usableBytes = space.usable
        } catch {
            configuration.logger.error("describing the data directory failed", metadata: ["directory": "\(configuration.dataDirectory)", "error": "\(error)"])
            result.errorCode = ErrorCode.kafkaStorageError.rawValue
        }
        for partition in wanted {
            var entry = DescribeLogDirsResponse.DescribeLogDirsPartition()
            entry.partitionIndex = partition.id.partition
            entry.partitionSize = Int64(partition.log.sizeInBytes)
            entry.offsetLag = max(partition.log.highWatermark - partition.log.logEndOffset, 0)
            entry.isFutureKey = false
            if let last = result.topics.indices.last, result.topics[last].name == partition.id.topic {
                result.topics[last].partitions.append(entry)
            } else {
                var topic = DescribeLogDirsResponse.DescribeLogDirsTopic()
                topic.name = partition.id.topic
                topic.partitions = [entry]
                result.topics.append(topic)
            }
        }
        var response = DescribeLogDirsResponse()
        response.results = [result]
        return response
    }

    /// The file system's size and the bytes an unprivileged writer may still use (statvfs).
    static func space(of directory: String) throws -> (total: Int64, usable: Int64) {
        var stats = statvfs()
        guard statvfs(directory, &stats) == 0 else {
            throw StorageError(.io, path: directory, errno: errno, "statvfs failed")
        }
        let block = Int64(stats.f_frsize)
        return (Int64(stats.f_blocks) * block, Int64(stats.f_bavail) * block)
    }

    /// `path` made absolute against the working directory (Kafka answers the absolute path).
    static func absolutePath(_ path: String) -> String {
        guard !path.hasPrefix("/"), let cwd = getcwd(nil, 0) else { return path }
        defer { free(cwd) }
        return String(cString: cwd) + "/" + path
    }
}
