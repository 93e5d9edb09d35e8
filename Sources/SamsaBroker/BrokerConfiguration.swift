public import Logging
public import SamsaStorage

/// What a broker serves and how (Kafka's server property names in the comments).
public struct BrokerConfiguration: Sendable {
    /// The data directory (`log.dirs`).
    public var dataDirectory: String
    /// Where to listen; port 0 picks a free port (`listeners`).
    public var host: String
    public var port: Int
    /// What Metadata tells clients to connect to (`advertised.listeners`); nil advertises the bound address.
    public var advertisedHost: String?
    public var advertisedPort: Int?
    /// This broker's id (`node.id`).
    public var brokerId: Int32
    /// Create a topic when Metadata asks for an unknown one (`auto.create.topics.enable`).
    public var autoCreateTopics: Bool
    /// Partitions of an automatically created topic, or of CreateTopics with -1 (`num.partitions`).
    public var defaultPartitions: Int32
    /// Settings of new partition logs (segment size, flush policy, retention).
    public var logConfiguration: LogConfiguration
    /// The log cleaner of compacted topics (`log.cleaner.enable`, `log.cleaner.threads`,
    /// `log.cleaner.dedupe.buffer.size`, `log.cleaner.io.max.bytes.per.second`, `log.cleaner.backoff.ms`);
    /// the per-topic settings (`log.cleaner.min.cleanable.ratio`, ...) are in `logConfiguration`.
    public var cleaner = LogCleanerConfiguration()
    /// The largest request accepted; a larger one closes its connection (`socket.request.max.bytes`).
    public var maxRequestBytes: Int
    /// The largest record batch accepted (`message.max.bytes`).
    public var maxMessageBytes: Int
    /// The codec topics without their own `compression.type` store batches in (`compression.type`;
    /// Kafka's default `producer`: as each producer wrote them).
    public var compressionType = BrokerCompressionType.kafkaDefault
    /// Event loop threads; nil uses one per core.
    public var eventLoopThreads: Int?
    /// Threads of the I/O pool: blocking file work off the event loops and the cooperative pool (fetch and
    /// ListOffsets reads, opening and recovery at start, checkpoints, retention). Appends run on each
    /// partition's own serial queue, and topic creation on the topic table's.
    public var ioThreads: Int
    /// Where to serve Prometheus metrics (`GET /metrics`); nil serves none, 0 picks a free port.
    public var metricsHost = "127.0.0.1"
    public var metricsPort: Int?
    /// Join a cluster through coordination (replication); nil is a single broker leading everything.
    public var cluster: ClusterSettings?
    /// How often old segments are deleted per topic's `retention.ms` / `retention.bytes`
    /// (`log.retention.check.interval.ms`); zero never checks.
    public var retentionCheckInterval: Duration = .seconds(300)
    /// Send fetched records from the segment files without copying them through user space
    /// (sendfile, through NIO's `FileRegion`); false reads them into memory and writes them with the
    /// response (the copying path: the baseline of the benchmark, kept working).
    public var zeroCopyFetch = true
    // Topic creation limits (issue 20).
    /// The most partitions this broker holds (`max.broker.partitions`, KIP-578; Kafka leaves it
    /// unbounded): creates past it are refused with POLICY_VIOLATION.
    public var maxBrokerPartitions = BrokerConfiguration.defaultMaxBrokerPartitions
    public static let defaultMaxBrokerPartitions = 10_000
    // MARK: Fetch limits (issue 20: amplification, descriptors)
    /// The most record bytes a fetch response carries (`fetch.max.bytes`, Kafka's default 55 MiB),
    /// also capped by the request's `max_bytes` and each partition's `partition_max_bytes`. Only the
    /// first partition with records may pass these limits, by its first batch, so a reader always
    /// makes progress (KIP-74); the others get what fits. Values above 1 GiB count as 1 GiB
    /// (`FetchBudget.ceiling`), which keeps a response well inside its 32-bit size.
    public var fetchMaxBytes = 57_671_680
    /// The most partitions one zero-copy fetch response sends from the segment files
    /// (`--zero-copy-fetch-max-files`; Samsa's own, as Kafka shares each segment's descriptor): each
    /// holds a duplicated descriptor until the response is written, and a connection reads no further
    /// request meanwhile, so this bounds the descriptors one connection holds, however slowly its
    /// client reads. Records of further partitions are copied into the response.
    public var zeroCopyFetchMaxFiles = 16
    // MARK: -

    /// Log every request's API, version and client (for debugging clients).
    public var logRequests = false

    // MARK: Groups, committed offsets and producer state (hostile clients, issue 20)
    /// The group coordinator's bounds: session timeouts (`group.min.session.timeout.ms`,
    /// `group.max.session.timeout.ms`) and member ids awaiting their join.
    public var groupLimits = GroupLimits()
    /// `__consumer_offsets`: where groups and their committed offsets are kept.
    public var offsetsTopic = OffsetsTopicSettings()
    /// The longest metadata string an OffsetCommit may store per partition, in UTF-8 bytes
    /// (`offset.metadata.max.bytes`, 4,096): a longer one gets OFFSET_METADATA_TOO_LARGE for its
    /// partition, the others are committed.
    public var offsetMetadataMaxBytes = 4096
    /// How long a partition keeps the state of an idempotent producer that wrote nothing to it
    /// (`producer.id.expiration.ms`, 24 hours); after that, its next batch is accepted at any sequence.
    public var producerIdExpiration: Duration = .milliseconds(86_400_000)
    // MARK: Replica storage failures in a cluster (issue 20)
    /// Test seam: the file system of the partition logs and leader epochs (a fault-injecting one in
    /// tests, to fail a replica's writes as a full disk would).
    package var fileSystem: any FileSystem = PosixFileSystem()

    // MARK: Connections (hostile clients: connection counts, idle connections, request memory)
    /// Client connections open at once (`max.connections`; Kafka's default, no limit). At the limit
    /// the broker stops accepting: new connections wait in the listen backlog until one closes, as
    /// Kafka's acceptor blocks. Whatever this says, client connections stay below the descriptor
    /// limit (`ulimit -n`) less what the broker keeps for its own files (`DescriptorCeiling`): a
    /// process out of descriptors crashes in libdispatch.
    public var maxConnections = Int.max
    /// Connections from one IP address at once (`max.connections.per.ip`; Kafka's default, no
    /// limit); one more is closed as soon as it is accepted.
    public var maxConnectionsPerIp = Int.max
    /// A connection that completed no request and was sent no response for this long is closed
    /// (`connections.max.idle.ms`, Kafka's default 10 minutes), including one that sent part of a
    /// request and stalled. Also applies to the metrics port.
    public var connectionsMaxIdle: Duration = .milliseconds(600_000)
    /// Bytes of requests held at once over all connections, those still arriving and those not yet
    /// answered (`queued.max.request.bytes`). Past it connections are not read until answered
    /// requests free room (`RequestMemoryPool`). Kafka's default is -1, no limit; here 256 MiB, so a
    /// few hundred connections each sending most of a 100 MiB request cannot take gigabytes.
    public var queuedMaxRequestBytes = 256 << 20
    /// Connections to the metrics port at once (no Kafka equivalent: Prometheus uses one or two);
    /// past it new ones wait in the backlog. Each is answered one request at a time.
    public var metricsMaxConnections = 8
    /// Where log lines go (swift-log): start and stop at info, failures and a malformed request
    /// closing its connection at warning, requests (`logRequests`) at info. Silent by default.
    public var logger: Logger

    public init(
        dataDirectory: String, host: String = "127.0.0.1", port: Int = 9092, advertisedHost: String? = nil, advertisedPort: Int? = nil,
        brokerId: Int32 = 0, autoCreateTopics: Bool = false, defaultPartitions: Int32 = 1,
        logConfiguration: LogConfiguration = LogConfiguration(), maxRequestBytes: Int = 100 << 20, maxMessageBytes: Int = 1_048_588,
        eventLoopThreads: Int? = nil, ioThreads: Int = 4,
        logger: Logger = Logger(label: "samsa.broker", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.dataDirectory = dataDirectory
        self.host = host
        self.port = port
        self.advertisedHost = advertisedHost
        self.advertisedPort = advertisedPort
        self.brokerId = brokerId
        self.autoCreateTopics = autoCreateTopics
        self.defaultPartitions = defaultPartitions
        self.logConfiguration = logConfiguration
        self.maxRequestBytes = maxRequestBytes
        self.maxMessageBytes = maxMessageBytes
        self.eventLoopThreads = eventLoopThreads
        self.ioThreads = ioThreads
        self.logger = logger
    }
}
