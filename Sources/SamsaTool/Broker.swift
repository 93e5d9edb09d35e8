import ArgumentParser
import Foundation
import Logging
import SamsaBroker
import SamsaCoordination
import SamsaStorage

/// `samsa broker --dir DATA --listen 127.0.0.1:9092`: serves Kafka clients from a data directory;
/// with `--coordination zookeeper://h1:p1,h2:p2[/chroot]` it is one broker of a replicated cluster.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker", abstract: "Serve a data directory to Kafka clients (the Kafka wire protocol).")

    @Option(help: "Data directory (created if absent).")
    var dir: String
    @Option(help: "HOST:PORT to listen on (port 0 picks a free one).")
    var listen = "127.0.0.1:9092"
    @Option(help: "HOST:PORT that Metadata tells clients to connect to (default: the listening address).")
    var advertisedListener: String?
    @Option(help: "This broker's id.")
    var brokerId: Int32 = 0
    @Option(help: "Partitions of automatically created topics and of CreateTopics with -1.")
    var defaultPartitions: Int32 = 1
    @Option(help: "Create unknown topics that Metadata asks for: true or false.")
    var autoCreateTopics = false
    @Option(help: "Flush policy of new topics: every-append, interval:MS, messages:N or never.")
    var flush = FlushPolicyArgument(argument: "every-append")!
    @Option(help: "Segment size in bytes.")
    var segmentBytes = 1 << 30
    @Option(help: "Send fetched records from the segment files with sendfile (true) or copy them through memory (false).")
    var zeroCopyFetch = true
    @Flag(help: "Log every request (API, version, client) to stderr.")
    var logRequests = false
    @Option(help: "HOST:PORT to serve Prometheus metrics on (GET /metrics); none by default.")
    var metrics: String?
    @Option(help: "Join a cluster: zookeeper://HOST:PORT[,HOST:PORT...][/CHROOT] (default: a single broker).")
    var coordination: String?
    @Option(help: "Coordination session timeout in milliseconds (a dead broker's partitions move after about this long).")
    var sessionTimeoutMs = 6000
    @Option(help: "A follower not caught up for this long leaves the ISR (replica.lag.time.max.ms).")
    var replicaLagTimeMaxMs = 30_000

    func run() async throws {
        // Before the work starts, so a stop asked for while the logs recover is not missed.
        let stop = StopSignals()
        let (host, port) = try Self.hostAndPort(listen)
        let metricsListener = try metrics.map(Self.hostAndPort)
        let advertised = try advertisedListener.map(Self.hostAndPort)
        let configuration = BrokerConfiguration(
            dataDirectory: dir, host: host, port: port, advertisedHost: advertised?.0, advertisedPort: advertised?.1, brokerId: brokerId,
            autoCreateTopics: autoCreateTopics, defaultPartitions: defaultPartitions,
            logConfiguration: LogConfiguration(segmentBytes: segmentBytes, flushPolicy: flush.policy),
            logger: Self.logger())
        var settings = configuration
        settings.logRequests = logRequests
        settings.zeroCopyFetch = zeroCopyFetch
        if let (metricsHost, metricsPort) = metricsListener {
            settings.metricsHost = metricsHost
            settings.metricsPort = metricsPort
        }
        if let coordination {
            let (servers, root) = try Self.zooKeeper(coordination)
            let timeout = Duration.milliseconds(sessionTimeoutMs)
            settings.cluster = ClusterSettings(
                connect: { try await ZooKeeperSession.connect(servers: servers, sessionTimeout: timeout) }, root: root,
                replicaLagTimeMaxMs: replicaLagTimeMaxMs)
        }
        let broker = try await Broker.start(settings)
        // One line, written at once (not buffered): scripts wait for it before connecting.
        FileHandle.standardOutput.write(Data("listening on \(host):\(broker.localAddress.port ?? port)\n".utf8))
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            stop.whenStopped { continuation.resume() }
        }
        try await broker.stop()
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
