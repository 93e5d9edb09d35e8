import ArgumentParser
import Foundation
import Logging
import SamsaBroker
import SamsaCoordination
import SamsaStorage
import ServiceLifecycle
import UnixSignals

/// `samsa broker --dir DATA --listen 127.0.0.1:9092`: serves Kafka clients from a data directory;
/// with `--coordination zookeeper://h1:p1,h2:p2[/chroot]` it is one broker of a replicated cluster.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker", abstract: "Serve a data directory to Kafka clients (the Kafka wire protocol).")

    // Options without a default here take it from `--config` and then the default named in the help.
    @Option(help: "Data directory (created if absent); required, here or in --config.")
    var dir: String?
    @Option(help: "HOST:PORT to listen on (port 0 picks a free one; default 127.0.0.1:9092).")
    var listen: String?
    @Option(help: "HOST:PORT that Metadata tells clients to connect to (default: the listening address).")
    var advertisedListener: String?
    @Option(help: "This broker's id (default 0).")
    var brokerId: Int32?
    @Option(help: "Partitions of automatically created topics and of CreateTopics with -1 (default 1).")
    var defaultPartitions: Int32?
    @Option(help: "Create unknown topics that Metadata asks for: true or false (default false).")
    var autoCreateTopics: Bool?
    @Option(help: "Flush policy of new topics: every-append, interval:MS, messages:N or never (default every-append).")
    var flush: FlushPolicyArgument?
    @Option(help: "Segment size in bytes (default 1 GiB).")
    var segmentBytes: Int?
    @Option(help: "Default retention.ms of new topics: delete segments whose records are all older (default: keep forever).")
    var retentionMs: Int64?
    @Option(help: "Default retention.bytes of new topics: delete the oldest segments past this size per partition (default: no limit).")
    var retentionBytes: Int64?
    @Option(help: "How often old segments are deleted by retention (log.retention.check.interval.ms; default 300000, 0 never).")
    var retentionCheckIntervalMs: Int?
    // Log compaction (Kafka's log.cleanup.policy and log.cleaner.* names).
    @Option(help: "Default cleanup.policy of topics: delete, compact or compact,delete (log.cleanup.policy; default delete).")
    var logCleanupPolicy: String?
    @Option(help: "Run the log cleaner of compacted topics: true or false (log.cleaner.enable; default true).")
    var logCleanerEnable: Bool?
    @Option(help: "Log cleaner threads (log.cleaner.threads; default 1).")
    var logCleanerThreads: Int?
    @Option(help: "Memory of the cleaner's offset maps, all threads together, in bytes (log.cleaner.dedupe.buffer.size; default 134217728).")
    var logCleanerDedupeBufferSize: Int?
    @Option(help: "Bytes per second the cleaner reads and writes, all threads together (log.cleaner.io.max.bytes.per.second; default no limit).")
    var logCleanerIoMaxBytesPerSecond: Int64?
    @Option(help: "Pause of a cleaner thread that found nothing to clean (log.cleaner.backoff.ms; default 15000).")
    var logCleanerBackoffMs: Int?
    @Option(help: "Default delete.retention.ms of compacted topics: how long tombstones stay (log.cleaner.delete.retention.ms; default 86400000).")
    var logCleanerDeleteRetentionMs: Int64?
    @Option(help: "Default min.cleanable.dirty.ratio of compacted topics, 0 to 1 (log.cleaner.min.cleanable.ratio; default 0.5).")
    var logCleanerMinCleanableRatio: Double?
    @Option(help: "Default min.compaction.lag.ms of compacted topics (log.cleaner.min.compaction.lag.ms; default 0).")
    var logCleanerMinCompactionLagMs: Int64?
    @Option(help: "Default max.compaction.lag.ms of compacted topics (log.cleaner.max.compaction.lag.ms; default no bound).")
    var logCleanerMaxCompactionLagMs: Int64?
    @Option(help: "Default compression.type of topics: producer (batches kept as written), uncompressed, lz4 or zstd, which recompress batches in another codec (compression.type; default producer).")
    var compressionType: String?
    @Option(help: "Send fetched records from the segment files with sendfile (true) or copy them through memory (false; default true).")
    var zeroCopyFetch: Bool?
    // Fetch limits (issue 20: amplification, descriptors)
    @Option(help: "Most record bytes in one fetch response, past which only the first partition's first batch goes (fetch.max.bytes; default 57671680).")
    var fetchMaxBytes: Int?
    @Option(help: "Most partitions one zero-copy fetch response sends from the files, each holding a descriptor until sent; the rest are copied (default 16).")
    var zeroCopyFetchMaxFiles: Int?
    @Flag(help: "Log every request (API, version, client) to stderr.")
    var logRequests = false
    @Option(help: "HOST:PORT to serve Prometheus metrics on (GET /metrics); none by default.")
    var metrics: String?
    @Option(help: "Join a cluster: zookeeper://HOST:PORT[,HOST:PORT...][/CHROOT] (default: a single broker).")
    var coordination: String?
    @Option(help: "Coordination session timeout in milliseconds (a dead broker's partitions move after about this long; default 6000).")
    var sessionTimeoutMs: Int?
    @Option(help: "A follower not caught up for this long leaves the ISR (replica.lag.time.max.ms; default 30000).")
    var replicaLagTimeMaxMs: Int?
    // Groups, committed offsets and producer state (hostile clients).
    @Option(help: "Shortest consumer group session timeout a JoinGroup may ask for (group.min.session.timeout.ms; default 6000).")
    var groupMinSessionTimeoutMs: Int?
    @Option(help: "Longest consumer group session timeout a JoinGroup may ask for (group.max.session.timeout.ms; default 1800000).")
    var groupMaxSessionTimeoutMs: Int?
    @Option(help: "Member ids handed out and not yet used, across all groups; past it the oldest is forgotten (default 100000).")
    var groupMaxPendingMembers: Int?
    @Option(help: "Most members one consumer group may have; a new one past it gets GROUP_MAX_SIZE_REACHED (group.max.size; default 10000).")
    var groupMaxSize: Int?
    @Option(help: "How long the first rebalance of an empty consumer group waits for more members (group.initial.rebalance.delay.ms; default 3000).")
    var groupInitialRebalanceDelayMs: Int?
    @Option(help: "Longest metadata string of a committed offset, in bytes (offset.metadata.max.bytes; default 4096).")
    var offsetMetadataMaxBytes: Int?
    @Option(help: "Partitions of __consumer_offsets, where groups and committed offsets live, when it is made (offsets.topic.num.partitions; default 50).")
    var offsetsTopicNumPartitions: Int32?
    @Option(help: "Replicas of each __consumer_offsets partition when it is made, capped by the live brokers (offsets.topic.replication.factor; default 3).")
    var offsetsTopicReplicationFactor: Int16?
    @Option(help: "An empty group's committed offsets are deleted this long after it became empty, a simple consumer's after its commit (offsets.retention.minutes; default 10080).")
    var offsetsRetentionMinutes: Int?
    @Option(help: "A partition forgets an idempotent producer idle this long (producer.id.expiration.ms; default 86400000).")
    var producerIdExpirationMs: Int?
    // Replica storage failures in a cluster.
    @Option(help: "First retry of a replica whose storage failed (its logs not made, an append failed: a full disk) after this long, doubling per failure (replica.fetch.backoff.ms; default 1000).")
    var replicaFetchBackoffMs: Int?
    @Option(help: "Longest wait between two retries of a replica whose storage fails (default 30000).")
    var replicaFetchBackoffMaxMs: Int?
    @Option(help: "Bytes per second this broker fetches for the partitions a reassignment is adding to it (follower.replication.throttled.rate; default: unthrottled).")
    var followerReplicationThrottledRate: Int?
    // Connections (hostile clients): counts, idle time, request memory.
    @Option(help: "Client connections open at once; more wait to be accepted (max.connections; default no limit but the descriptor limit's).")
    var maxConnections: Int?
    @Option(help: "Connections from one IP address at once; more are closed (max.connections.per.ip; default no limit).")
    var maxConnectionsPerIp: Int?
    @Option(help: "Close a connection with no request or response for this long (connections.max.idle.ms; default 600000).")
    var connectionsMaxIdleMs: Int?
    @Option(help: "Bytes of requests held at once over all connections, being received or waiting; past it connections are not read (queued.max.request.bytes; default 268435456).")
    var queuedMaxRequestBytes: Int?
    @Option(help: "Connections to the metrics port at once (default 8).")
    var metricsMaxConnections: Int?

    @Option(help: "A file of KEY = VALUE lines with these options' names as keys (e.g. broker-id = 2); the command line wins.")
    var config: String?

    func run() async throws {
        let file = try config.map(BrokerConfigFile.init(path:))
        /// The command line's value, else the file's, else the default.
        func option<Value: ExpressibleByArgument>(_ given: Value?, _ key: String, default fallback: Value) throws -> Value {
            try given ?? file?.value(key) ?? fallback
        }
        guard let dir = try dir ?? file?.value("dir", as: String.self) else {
            throw ValidationError("Missing expected argument '--dir <dir>' (or dir = ... in --config)")
        }
        let listen = try option(listen, "listen", default: "127.0.0.1:9092")
        let metrics = try metrics ?? file?.value("metrics", as: String.self)
        let advertisedListener = try advertisedListener ?? file?.value("advertised-listener", as: String.self)
        let coordination = try coordination ?? file?.value("coordination", as: String.self)
        let sessionTimeoutMs = try option(sessionTimeoutMs, "session-timeout-ms", default: 6000)
        let replicaLagTimeMaxMs = try option(replicaLagTimeMaxMs, "replica-lag-time-max-ms", default: 30_000)
        let segmentBytes = try option(segmentBytes, "segment-bytes", default: 1 << 30)
        guard segmentBytes > 0, sessionTimeoutMs > 0, replicaLagTimeMaxMs > 0 else {
            throw ValidationError("segment-bytes, session-timeout-ms and replica-lag-time-max-ms must be positive")
        }
        let retentionMs = try retentionMs ?? file?.value("retention-ms", as: Int64.self)
        let retentionBytes = try retentionBytes ?? file?.value("retention-bytes", as: Int64.self)
        let retentionCheckIntervalMs = try option(retentionCheckIntervalMs, "retention-check-interval-ms", default: 300_000)
        guard (retentionMs ?? 1) > 0, (retentionBytes ?? 1) > 0, retentionCheckIntervalMs >= 0 else {
            throw ValidationError("retention-ms and retention-bytes must be positive, retention-check-interval-ms not negative")
        }
        let (host, port) = try Self.hostAndPort(listen)
        let metricsListener = try metrics.map(Self.hostAndPort)
        let advertised = try advertisedListener.map(Self.hostAndPort)
        let configuration = BrokerConfiguration(
            dataDirectory: dir, host: host, port: port, advertisedHost: advertised?.0, advertisedPort: advertised?.1,
            brokerId: try option(brokerId, "broker-id", default: 0),
            autoCreateTopics: try option(autoCreateTopics, "auto-create-topics", default: false),
            defaultPartitions: try option(defaultPartitions, "default-partitions", default: 1),
            logConfiguration: LogConfiguration(
                segmentBytes: segmentBytes, flushPolicy: try option(flush, "flush", default: FlushPolicyArgument(argument: "every-append")!).policy,
                retentionBytes: retentionBytes, retentionMilliseconds: retentionMs),
            logger: Self.logger())
        var settings = configuration
        settings.retentionCheckInterval = .milliseconds(retentionCheckIntervalMs)
        try applyCompactionOptions(to: &settings, file: file)
        let compressionText = try option(compressionType, "compression-type", default: BrokerCompressionType.kafkaDefault.configValue)
        guard let compression = BrokerCompressionType(configValue: compressionText) else {
            throw ValidationError("compression-type must be producer, uncompressed, lz4 or zstd (Samsa cannot store gzip or snappy batches), not '\(compressionText)'")
        }
        settings.compressionType = compression
        settings.logRequests = try logRequests || file?.value("log-requests", as: Bool.self) == true
        settings.zeroCopyFetch = try option(zeroCopyFetch, "zero-copy-fetch", default: true)
        // Groups, committed offsets and producer state (hostile clients).
        let minSessionMs = try option(groupMinSessionTimeoutMs, "group-min-session-timeout-ms", default: 6000)
        let maxSessionMs = try option(groupMaxSessionTimeoutMs, "group-max-session-timeout-ms", default: 1_800_000)
        settings.groupLimits.maxPendingMembers = try option(groupMaxPendingMembers, "group-max-pending-members", default: 100_000)
        settings.groupLimits.maxGroupSize = try option(groupMaxSize, "group-max-size", default: 10_000)
        let initialRebalanceDelayMs = try option(groupInitialRebalanceDelayMs, "group-initial-rebalance-delay-ms", default: 3000)
        guard initialRebalanceDelayMs >= 0, initialRebalanceDelayMs <= Int(Int32.max) else {
            throw ValidationError("group-initial-rebalance-delay-ms must be between 0 and 2147483647")
        }
        settings.groupLimits.initialRebalanceDelay = .milliseconds(initialRebalanceDelayMs)
        settings.offsetMetadataMaxBytes = try option(offsetMetadataMaxBytes, "offset-metadata-max-bytes", default: 4096)
        settings.offsetsTopic.partitions = try option(offsetsTopicNumPartitions, "offsets-topic-num-partitions", default: 50)
        settings.offsetsTopic.replicationFactor = try option(offsetsTopicReplicationFactor, "offsets-topic-replication-factor", default: 3)
        let retentionMinutes = try option(offsetsRetentionMinutes, "offsets-retention-minutes", default: 10080)
        guard settings.offsetsTopic.partitions > 0, settings.offsetsTopic.replicationFactor > 0, retentionMinutes > 0, retentionMinutes <= Int.max / 60_000 else {
            throw ValidationError("offsets-topic-num-partitions, offsets-topic-replication-factor and offsets-retention-minutes must be positive")
        }
        settings.offsetsTopic.retention = .seconds(retentionMinutes * 60)
        let producerIdExpirationMs = try option(producerIdExpirationMs, "producer-id-expiration-ms", default: 86_400_000)
        guard minSessionMs > 0, maxSessionMs >= minSessionMs, settings.groupLimits.maxPendingMembers > 0, settings.groupLimits.maxGroupSize > 0,
            settings.offsetMetadataMaxBytes >= 0,
            producerIdExpirationMs > 0
        else {
            throw ValidationError(
                "group-min-session-timeout-ms must be positive and at most group-max-session-timeout-ms; group-max-pending-members, group-max-size and "
                    + "producer-id-expiration-ms positive; offset-metadata-max-bytes not negative")
        }
        settings.groupLimits.minSessionTimeout = .milliseconds(minSessionMs)
        settings.groupLimits.maxSessionTimeout = .milliseconds(maxSessionMs)
        settings.producerIdExpiration = .milliseconds(producerIdExpirationMs)
        // Fetch limits (issue 20: amplification, descriptors)
        settings.fetchMaxBytes = try option(fetchMaxBytes, "fetch-max-bytes", default: settings.fetchMaxBytes)
        settings.zeroCopyFetchMaxFiles = try option(zeroCopyFetchMaxFiles, "zero-copy-fetch-max-files", default: settings.zeroCopyFetchMaxFiles)
        guard settings.fetchMaxBytes >= 0, settings.zeroCopyFetchMaxFiles >= 0 else {
            throw ValidationError("fetch-max-bytes and zero-copy-fetch-max-files must not be negative")
        }
        if let (metricsHost, metricsPort) = metricsListener {
            settings.metricsHost = metricsHost
            settings.metricsPort = metricsPort
        }
        // Replica storage failures in a cluster.
        let replicaFetchBackoffMs = try option(replicaFetchBackoffMs, "replica-fetch-backoff-ms", default: 1000)
        let replicaFetchBackoffMaxMs = try option(replicaFetchBackoffMaxMs, "replica-fetch-backoff-max-ms", default: 30_000)
        guard replicaFetchBackoffMs > 0, replicaFetchBackoffMaxMs >= replicaFetchBackoffMs else {
            throw ValidationError("replica-fetch-backoff-ms must be positive and at most replica-fetch-backoff-max-ms")
        }
        let throttledRate = try followerReplicationThrottledRate ?? file?.value("follower-replication-throttled-rate", as: Int.self)
        guard (throttledRate ?? 1) > 0 else { throw ValidationError("follower-replication-throttled-rate must be positive") }
        let maxConnections = try option(maxConnections, "max-connections", default: Int.max)
        let maxConnectionsPerIp = try option(maxConnectionsPerIp, "max-connections-per-ip", default: Int.max)
        let connectionsMaxIdleMs = try option(connectionsMaxIdleMs, "connections-max-idle-ms", default: 600_000)
        let queuedMaxRequestBytes = try option(queuedMaxRequestBytes, "queued-max-request-bytes", default: 256 << 20)
        let metricsMaxConnections = try option(metricsMaxConnections, "metrics-max-connections", default: 8)
        guard maxConnections > 0, maxConnectionsPerIp > 0, connectionsMaxIdleMs > 0, queuedMaxRequestBytes > 0, metricsMaxConnections > 0 else {
            throw ValidationError(
                "max-connections, max-connections-per-ip, connections-max-idle-ms, queued-max-request-bytes and metrics-max-connections must be positive")
        }
        settings.maxConnections = maxConnections
        settings.maxConnectionsPerIp = maxConnectionsPerIp
        settings.connectionsMaxIdle = .milliseconds(connectionsMaxIdleMs)
        settings.queuedMaxRequestBytes = queuedMaxRequestBytes
        settings.metricsMaxConnections = metricsMaxConnections
        // As the JVM does for Kafka (-XX:+MaxFDLimit): use every descriptor the hard limit allows.
        Self.raiseDescriptorLimit()
        if let coordination {
            let (servers, root) = try Self.zooKeeper(coordination)
            let timeout = Duration.milliseconds(sessionTimeoutMs)
            settings.cluster = ClusterSettings(
                connect: { try await ZooKeeperSession.connect(servers: servers, sessionTimeout: timeout) }, root: root,
                replicaLagTimeMaxMs: replicaLagTimeMaxMs, replicaFetchBackoffMs: replicaFetchBackoffMs, replicaFetchBackoffMaxMs: replicaFetchBackoffMaxMs,
                followerReplicationThrottledRate: throttledRate)
        }
        // The service group traps SIGTERM and SIGINT before the broker starts (a stop asked for while
        // the logs recover is not missed) and turns the first into a graceful shutdown.
        let service = BrokerService(settings) { broker in
            // One line, written at once (not buffered): scripts wait for it before connecting.
            FileHandle.standardOutput.write(Data("listening on \(host):\(broker.localAddress.port ?? port)\n".utf8))
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: settings.logger))
        // A second SIGTERM or SIGINT while the shutdown runs exits at once (128 + the signal), for a
        // stop that hangs. Trapped before the group starts, so it sees the first signal too.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        try await withThrowingDiscardingTaskGroup { tasks in
            tasks.addTask {
                var seen = 0
                for await signal in signals {
                    seen += 1
                    if seen >= 2 { _exit(128 + signal.rawValue) }
                }
            }
            try await group.run()
            tasks.cancelAll()
        }
    }

    /// `--log-cleanup-policy` and the `--log-cleaner-*` options, with Kafka's validation ranges.
    private func applyCompactionOptions(to settings: inout BrokerConfiguration, file: BrokerConfigFile?) throws {
        func option<Value: ExpressibleByArgument>(_ given: Value?, _ key: String, default fallback: Value) throws -> Value {
            try given ?? file?.value(key) ?? fallback
        }
        let policyText = try option(logCleanupPolicy, "log-cleanup-policy", default: "delete")
        guard let policy = CleanupPolicy(policyText) else { throw ValidationError("log-cleanup-policy must be delete, compact or compact,delete") }
        var log = settings.logConfiguration
        log.cleanupPolicy = policy
        log.deleteRetentionMilliseconds = try option(logCleanerDeleteRetentionMs, "log-cleaner-delete-retention-ms", default: 86_400_000)
        log.minCleanableDirtyRatio = try option(logCleanerMinCleanableRatio, "log-cleaner-min-cleanable-ratio", default: 0.5)
        log.minCompactionLagMilliseconds = try option(logCleanerMinCompactionLagMs, "log-cleaner-min-compaction-lag-ms", default: 0)
        log.maxCompactionLagMilliseconds = try option(logCleanerMaxCompactionLagMs, "log-cleaner-max-compaction-lag-ms", default: .max)
        guard log.deleteRetentionMilliseconds >= 0, (0...1).contains(log.minCleanableDirtyRatio), log.minCompactionLagMilliseconds >= 0,
            log.maxCompactionLagMilliseconds >= 1, log.minCompactionLagMilliseconds <= log.maxCompactionLagMilliseconds
        else {
            throw ValidationError(
                "log-cleaner-delete-retention-ms and log-cleaner-min-compaction-lag-ms must not be negative, log-cleaner-min-cleanable-ratio must be "
                    + "from 0 to 1, log-cleaner-max-compaction-lag-ms positive and at least log-cleaner-min-compaction-lag-ms")
        }
        settings.logConfiguration = log
        let threads = try option(logCleanerThreads, "log-cleaner-threads", default: 1)
        let dedupeBytes = try option(logCleanerDedupeBufferSize, "log-cleaner-dedupe-buffer-size", default: 128 << 20)
        let rate = try logCleanerIoMaxBytesPerSecond ?? file?.value("log-cleaner-io-max-bytes-per-second", as: Int64.self)
        let backoffMs = try option(logCleanerBackoffMs, "log-cleaner-backoff-ms", default: 15_000)
        // Kafka: threads at least 1 (`atLeast(0)`, but 0 would never clean), the buffer at least 1 MiB
        // per thread (`LogCleaner`'s "... must be at least 1MB per cleaner thread"), backoff at least 0.
        guard threads >= 1, dedupeBytes >= threads << 20, (rate ?? 1) > 0, backoffMs >= 0 else {
            throw ValidationError(
                "log-cleaner-threads must be positive, log-cleaner-dedupe-buffer-size at least 1 MiB per thread, "
                    + "log-cleaner-io-max-bytes-per-second positive, log-cleaner-backoff-ms not negative")
        }
        settings.cleaner = LogCleanerConfiguration(
            enabled: try option(logCleanerEnable, "log-cleaner-enable", default: true), threads: threads, dedupeBufferBytes: dedupeBytes,
            ioMaxBytesPerSecond: rate, backoffMilliseconds: backoffMs)
    }

    /// Raises the soft descriptor limit to the hard one (connections are held below it: `DescriptorCeiling`).
    static func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// Lines on stderr at info and above.
    static func logger() -> Logger {
        var logger = Logger(label: "samsa.broker", factory: { label in StreamLogHandler.standardError(label: label) })
        logger.logLevel = .info
        return logger
    }

    /// `zookeeper://h1:p1,h2:p2/chroot` → (["h1:p1", "h2:p2"], "/chroot"); the chroot may be absent.
    static func zooKeeper(_ text: String) throws -> (servers: [String], root: String) {
        let scheme = "zookeeper://"
        guard text.hasPrefix(scheme) else { throw ValidationError("--coordination must be zookeeper://HOST:PORT[,HOST:PORT...][/CHROOT]") }
        let rest = text.dropFirst(scheme.count)
        let hosts = rest.prefix { $0 != "/" }
        var root = String(rest.dropFirst(hosts.count))
        while root.hasSuffix("/") { root.removeLast() }
        let servers = hosts.split(separator: ",").map(String.init)
        guard !servers.isEmpty else { throw ValidationError("--coordination names no ZooKeeper server") }
        for server in servers { _ = try hostAndPort(server) }
        return (servers, root)
    }

    static func hostAndPort(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("expected HOST:PORT, got '\(text)'")
        }
        return (String(text[..<colon]), port)
    }
}
