import Logging
import NIOCore
import NIOPosix
import SamsaCoordination
import SamsaProtocol
import SamsaStorage
import Synchronization

/// A broker's cluster side (present when `BrokerConfiguration.cluster` is set): its coordination
/// session, registration, controller candidacy, replica manager and metadata access.
final class Cluster: Sendable {
    let brokerId: BrokerID
    let session: RenewableSession
    let paths: ClusterPaths
    let replicas: ReplicaManager
    let controller: ClusterController
    let metadata: CoordinationCatalog
    /// What `metadata` answers from: the cluster's metadata kept current by watches.
    let metadataCache: MetadataCache
    let producerIds: ClusterProducerIds
    /// Applies topic and broker config changes from coordination.
    let configs: ConfigWatcher
    private let logger: Logger
    private let watchdog = BackgroundTasks()

    init(
        brokerId: BrokerID, settings: ClusterSettings, session: RenewableSession, topics: TopicTable, epochs: LeaderEpochs, group: any EventLoopGroup,
        io: NIOThreadPool, dataDirectory: String, logger: Logger
    ) {
        self.brokerId = brokerId
        self.session = session
        self.paths = ClusterPaths(root: settings.root)
        var logger = logger
        logger[metadataKey: "broker"] = "\(brokerId)"
        self.logger = logger
        metadataCache = MetadataCache(session: session, paths: paths, logger: logger)
        replicas = ReplicaManager(
            brokerId: brokerId, settings: settings, session: session, topics: topics, epochs: epochs, metadata: metadataCache, group: group, io: io,
            dataDirectory: dataDirectory, logger: logger)
        controller = ClusterController(brokerId: brokerId, paths: paths, session: session, settings: settings, logger: logger, group: group)
        metadata = CoordinationCatalog(paths: paths, session: session, cache: metadataCache, elections: controller)
        producerIds = ClusterProducerIds(session: session, paths: paths, brokerId: brokerId.rawValue)
        configs = ConfigWatcher(session: session, paths: paths, topics: topics, logger: logger)
    }

    static func prepare(_ session: any CoordinationSession, paths: ClusterPaths) async throws {
        for path in paths.skeleton { try await session.createPath(path) }
    }

    /// Registers `/brokers/ids/N` (waiting out a node left by this broker's previous session, which
    /// coordination removes when that session ends), then starts following and competing for control.
    func start(host: String, port: Int32) async throws {
        try await register(host: host, port: port)
        metadataCache.start()
        configs.start()
        replicas.start()
        controller.start()
        watchdog.start { await self.rejoinWhenSessionEnds(host: host, port: port) }
    }

    private func register(host: String, port: Int32) async throws {
        let registration = ClusterJSON.encode(BrokerRegistration(host: host, port: port))
        let deadline = ContinuousClock.now + session.sessionTimeout * 2
        while true {
            do {
                _ = try await session.create(paths.broker(brokerId), data: registration, mode: .ephemeral)
            } catch let error as CoordinationError where error.code == .nodeExists && ContinuousClock.now < deadline {
                let (stat, watch) = try await session.exists(paths.broker(brokerId), watch: true)
                // Another session's (this broker's previous one): wait until it goes.
                if let stat, stat.ephemeralOwner != session.sessionID {
                    _ = try? await watch?.event()
                    continue
                }
            }
            // The broker epoch (KIP-380): the registration's creating transaction.
            guard let stat = try await session.exists(paths.broker(brokerId)), stat.ephemeralOwner == session.sessionID else { continue }
            replicas.ownEpoch.set(stat.czxid)
            logger.info("registered", metadata: ["broker_epoch": "\(stat.czxid)"])
            return
        }
    }

    /// A session that expired (coordination lost this broker for a whole session timeout) means the
    /// controller has moved its leaderships away: it stops leading and following at once, so it can
    /// never acknowledge a write a new leader does not have. Then it opens a new session, registers
    /// again and starts over as a broker that just joined: its replicas follow the current leaders
    /// (truncating by leader epoch) and rejoin the ISR once caught up (Kafka re-registers likewise).
    private func rejoinWhenSessionEnds(host: String, port: Int32) async {
        while !Task.isCancelled {
            var expired = false
            for await state in session.states() where state == .expired {
                expired = true
                break
            }
            guard expired, !Task.isCancelled else { return }
            logger.warning("coordination session expired: giving up every partition, then rejoining with a new session")
            await replicas.stop()
            await controller.stop()
            await configs.stop()
            await metadataCache.stop()
            while !Task.isCancelled {
                do {
                    try await session.renew()
                    try await register(host: host, port: port)
                    metadataCache.start()
                    configs.start()
                    replicas.start()
                    controller.start()
                    logger.info("rejoined the cluster", metadata: ["session": "\(session.sessionID)"])
                    break
                } catch {
                    logger.warning("rejoining the cluster failed (retrying)", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// First step of stopping: hands the partitions it leads to other ISR members (controlled
    /// shutdown) if asked, then stops replicating and gives up every role (waiting produces are
    /// answered at once).
    func resign(handingOver: Bool) async {
        if handingOver && session.state == .connected { await replicas.handOverLeadership() }
        // Stops following coordination first, so no state watch makes it leader again meanwhile.
        await replicas.stop()
    }

    /// Stops replicating and controlling, then ends the session (its ephemeral nodes go at once, so
    /// the controller moves what is still led here). Call `resign` first.
    func stop() async {
        await watchdog.stop()
        await replicas.stop()
        await controller.stop()
        await configs.stop()
        await metadataCache.stop()
        await session.close()
    }
}
