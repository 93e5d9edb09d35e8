public import NIOCore
import Logging
import NIOPosix
import Prometheus
import SamsaCoordination
import SamsaProtocol
import SamsaStorage
import Synchronization

/// A Kafka-protocol broker: one node, leader of every partition, serving Kafka clients from a Samsa
/// data directory.
///
/// Requests on one connection are handled one at a time and answered in order, as Kafka does (it mutes
/// a connection while its request is in flight); connections run concurrently. Event loops only frame
/// bytes (and, for zero-copy fetch, sendfile record bytes from the page cache, as Kafka's network
/// threads do); handlers run as tasks and put file work on an I/O thread pool. A request that does not
/// decode closes its connection (with a log line) and nothing else.
///
/// What one client, or many, can hold is bounded: connections (`maxConnections`, per IP
/// `maxConnectionsPerIp`, and always below the descriptor limit: `ConnectionGate`), their idle time
/// (`connectionsMaxIdle`: `IdleConnectionHandler`) and the bytes of requests being received or
/// waiting (`queuedMaxRequestBytes`: `RequestMemoryPool`, `RequestFrameReader`).
public final class Broker: Sendable {
    public let configuration: BrokerConfiguration
    /// Where the broker listens (the port is the bound one when 0 was asked for).
    public let localAddress: SocketAddress
    private let group: MultiThreadedEventLoopGroup
    private let io: NIOThreadPool
    private let logs: LogManager
    /// The data directory's writer lock: a second broker (or a `samsa produce`) on it is refused.
    private let lock: DirectoryLock
    private let serverChannel: NIOAsyncChannel<Connection, Never>
    let dispatcher: RequestDispatcher
    let metrics: BrokerMetrics
    let connectionLimits: ConnectionLimits
    let requestMemory: RequestMemoryPool
    let connectionMetrics: ConnectionMetrics
    /// The Prometheus endpoint, when `metricsPort` was given.
    private let metricsEndpoint: MetricsEndpoint?
    private let acceptLoop = Mutex<Task<Void, Never>?>(nil)
    private let stopped = Atomic<Bool>(false)
    /// Set before the listener closes: connections accepted from then on are closed at once. (A
    /// connection's async wrapper that reached the accept stream after it ended would be dropped
    /// unfinished, which NIO traps on; peers reconnecting while a broker stops hit that window.)
    private let refusing: Refusing

    /// Opens (recovering) the data directory, binds and starts accepting connections.
    public static func start(_ configuration: BrokerConfiguration) async throws -> Broker {
        let io = NIOThreadPool(numberOfThreads: configuration.ioThreads)
        io.start()
        let descriptorLimit = DescriptorCeiling.processLimit()
        let lock: DirectoryLock
        let logs: LogManager
        let legacyOffsets: LegacyOffsets?
        let stagedOffsets: StagedOffsets
        let producerIds: ProducerIdAllocator
        /// The topics as the data directory's registry records them.
        let stored: [String: StoredTopic]
        let epochs: LeaderEpochs?
        let brokerConfigs = BrokerConfigs(configuration: configuration)
        do {
            (lock, logs, legacyOffsets, stagedOffsets, producerIds, stored, epochs) = try await io.runIfActive {
                // Refused before anything is written: a foreign directory (no lock file made in it),
                // then one another writer holds; recovery runs only under the lock.
                try DataDirectory.prepare(configuration.dataDirectory, files: PosixFileSystem())
                let lock = try DirectoryLock(directory: configuration.dataDirectory)
                // The groups are served here from now on; what the embedded queue staged is folded in.
                let staged: StagedOffsets
                do {
                    staged = try StagedOffsets.open(dataDirectory: configuration.dataDirectory)
                } catch {
                    lock.release()
                    throw error
                }
                let stored: [String: StoredTopic]
                let logs: LogManager
                do {
                    // The one registry (`topics.json`), converted once from a broker's or the embedded
                    // queue's older files, and written empty for a new directory, so every `samsa`
                    // command recognises the directory.
                    let files = PosixFileSystem()
                    if let conversion = try TopicsConversion.convert(configuration.dataDirectory, files: files, adoptingPartitions: true) {
                        configuration.logger.notice("\(conversion)", metadata: ["directory": "\(configuration.dataDirectory)"])
                    }
                    if let topics = try TopicsFile.read(configuration.dataDirectory, files: files) {
                        stored = topics
                    } else {
                        try TopicsFile.write([:], configuration.dataDirectory, files: files)
                        stored = [:]
                    }
                    DynamicBrokerConfigFile.load(try DynamicBrokerConfigFile.read(dataDirectory: configuration.dataDirectory), into: brokerConfigs)
                    let base = brokerConfigs.logConfiguration
                    logs = try LogManager.open(
                        directory: configuration.dataDirectory, configuration: base,
                        configurations: TopicTable.logConfigurations(stored, base: base),
                        maxOpenFiles: DescriptorCeiling.segmentFileCache(limit: descriptorLimit), files: configuration.fileSystem,
                        cleaner: configuration.cleaner
                    ).manager
                } catch {
                    staged.close()
                    lock.release()
                    throw error
                }
                do {
                    let producerIds = try ProducerIdAllocator(dataDirectory: configuration.dataDirectory)
                    var epochs: LeaderEpochs?
                    if configuration.cluster != nil {
                        // Replicated logs show readers only what the ISR has: the checkpointed high watermark.
                        try ReplicaManager.loadHighWatermarks(dataDirectory: configuration.dataDirectory, logs: logs)
                        epochs = try LeaderEpochs(dataDirectory: configuration.dataDirectory, files: configuration.fileSystem)
                    }
                    return (lock, logs, try LegacyOffsets.open(dataDirectory: configuration.dataDirectory), staged, producerIds, stored, epochs)
                } catch {
                    try? logs.close()
                    staged.close()
                    lock.release()
                    throw error
                }
            }
        } catch {
            try? await io.shutdownGracefully()
            throw error
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads ?? System.coreCount)
        let registry = PrometheusCollectorRegistry()
        let maxFrame = configuration.maxRequestBytes
        let refusing = Refusing()
        let metricsConnections = configuration.metricsPort == nil ? 0 : configuration.metricsMaxConnections
        let ceiling = DescriptorCeiling(limit: descriptorLimit) { [descriptors = logs.descriptors] in
            // Segment files open now, room for the cache to fill up again, the metrics port's connections.
            DescriptorCeiling.reserve + descriptors.openCount + descriptors.capacity + metricsConnections
        }
        let limits = ConnectionLimits(
            maxConnections: configuration.maxConnections, maxPerAddress: configuration.maxConnectionsPerIp, descriptorRoom: { ceiling.room })
        let requestMemory = RequestMemoryPool(budget: configuration.queuedMaxRequestBytes, logger: configuration.logger)
        let connectionMetrics = ConnectionMetrics(registry: registry)
        let idle = TimeAmount(configuration.connectionsMaxIdle)
        let logger = configuration.logger
        var session: RenewableSession?
        do {
            if let settings = configuration.cluster {
                // Renewed after an expiry: the broker then registers again and rejoins (see `Cluster`).
                let opened = RenewableSession(try await settings.connect(), connect: settings.connect)
                session = opened
                try await Cluster.prepare(opened, paths: ClusterPaths(root: settings.root))
            }
            let server = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .gated(by: limits, listener: "kafka", logger: logger, metrics: connectionMetrics)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: configuration.host, port: configuration.port) { child in
                    child.eventLoop.makeCompletedFuture {
                        if refusing.flag.load(ordering: .acquiring) {
                            child.close(promise: nil)
                            throw ChannelError.ioOnClosedChannel
                        }
                        let memory = requestMemory.open()
                        try child.pipeline.syncOperations.addHandler(RequestFrameReader(memory: memory, maxFrameBytes: maxFrame))
                        try child.pipeline.syncOperations.addHandler(
                            IdleConnectionHandler<ByteBuffer>(
                                timeout: idle,
                                onClose: {
                                    connectionMetrics.closedIdle("kafka")
                                    logger.debug("closing an idle connection", metadata: ["peer": "\(child.remoteAddress.map { "\($0)" } ?? "?")"])
                                }))
                        // Requests are answered one at a time: beyond a few frames waiting (plus the
                        // one being received) the connection stops reading; all of them are counted
                        // in the request memory pool until answered.
                        let channel = try NIOAsyncChannel<ByteBuffer, IOData>(
                            wrappingChannelSynchronously: child,
                            configuration: .init(backPressureStrategy: .init(lowWatermark: 1, highWatermark: 3)))
                        return Connection(channel: channel, memory: memory)
                    }
                }
            let address = server.channel.localAddress!
            let advertised = (configuration.advertisedHost ?? configuration.host, Int32(configuration.advertisedPort ?? address.port ?? configuration.port))
            let dispatcher = RequestDispatcher(
                configuration: configuration, logs: logs, legacyOffsets: legacyOffsets, stagedOffsets: stagedOffsets, producerIds: producerIds, io: io, group: group,
                advertised: advertised, brokerConfigs: brokerConfigs, topics: stored, cluster: session.flatMap { session in epochs.map { (session, $0) } })
            let metrics = BrokerMetrics(registry: registry, replication: dispatcher.cluster?.replicas)
            let endpoint: MetricsEndpoint?
            if let port = configuration.metricsPort {
                do {
                    endpoint = try await MetricsEndpoint.bind(
                        host: configuration.metricsHost, port: port, configuration: configuration, connectionMetrics: connectionMetrics
                    ) {
                        connectionMetrics.record(limits: limits, memory: requestMemory)
                        return metrics.scrape(logs)
                    }
                } catch {
                    try? await server.channel.close()
                    throw error
                }
                configuration.logger.info(
                    "serving metrics", metadata: ["url": "http://\(configuration.metricsHost):\(endpoint?.localAddress?.port ?? port)/metrics"])
            } else {
                endpoint = nil
            }
            let broker = Broker(
                configuration: configuration, address: address, group: group, io: io, lock: lock, logs: logs, server: server, dispatcher: dispatcher,
                metrics: metrics, metricsEndpoint: endpoint, refusing: refusing,
                connections: (limits, requestMemory, connectionMetrics))
            if limits.ceiling < configuration.maxConnections {
                configuration.logger.info(
                    "client connections are capped below max.connections by the descriptor limit (ulimit -n)",
                    metadata: ["max_connections": "\(limits.ceiling)", "descriptor_limit": "\(descriptorLimit)"])
            }
            // Before the cluster side applies partition states: the coordinator sees every role change.
            dispatcher.groups.start()
            broker.startAccepting()
            dispatcher.retention.start(every: configuration.retentionCheckInterval)
            do {
                try await dispatcher.cluster?.start(host: advertised.0, port: advertised.1)
            } catch {
                try? await broker.stop(controlled: false)
                throw error
            }
            configuration.logger.info("broker \(configuration.brokerId) listening on \(address)", metadata: ["broker": "\(configuration.brokerId)", "address": "\(address)"])
            return broker
        } catch {
            await session?.close()
            try? logs.close()
            stagedOffsets.close()
            lock.release()
            try? await group.shutdownGracefully()
            try? await io.shutdownGracefully()
            throw error
        }
    }

    private init(
        configuration: BrokerConfiguration, address: SocketAddress, group: MultiThreadedEventLoopGroup, io: NIOThreadPool, lock: DirectoryLock,
        logs: LogManager,
        server: NIOAsyncChannel<Connection, Never>, dispatcher: RequestDispatcher, metrics: BrokerMetrics,
        metricsEndpoint: MetricsEndpoint?, refusing: Refusing,
        connections: (limits: ConnectionLimits, memory: RequestMemoryPool, metrics: ConnectionMetrics)
    ) {
        self.refusing = refusing
        self.connectionLimits = connections.limits
        self.requestMemory = connections.memory
        self.connectionMetrics = connections.metrics
        self.configuration = configuration
        self.localAddress = address
        self.group = group
        self.io = io
        self.lock = lock
        self.logs = logs
        self.serverChannel = server
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.metricsEndpoint = metricsEndpoint
    }

    /// The port the metrics endpoint listens on (the bound one when 0 was asked for).
    public var metricsPort: Int? { metricsEndpoint?.localAddress?.port }

    /// The metrics in Prometheus' text format, as the endpoint serves them.
    public func metricsText() -> String {
        connectionMetrics.record(limits: connectionLimits, memory: requestMemory)
        return String(decoding: metrics.scrape(logs), as: UTF8.self)
    }

    private func startAccepting() {
        let server = serverChannel
        let dispatcher = dispatcher
        let metrics = metrics
        let logger = configuration.logger
        let malformed = MalformedRequestLog()
        let task = Task {
            await withDiscardingTaskGroup { connections in
                do {
                    try await server.executeThenClose { inbound in
                        for try await connection in inbound {
                            connections.addTask {
                                await Self.serve(connection, dispatcher: dispatcher, metrics: metrics, malformed: malformed, logger: logger)
                            }
                        }
                    }
                } catch {
                    logger.warning("accepting connections stopped: \(error)")
                }
                // Stopping: close the connections still open, which ends their loops.
                connections.cancelAll()
            }
        }
        acceptLoop.withLock { $0 = task }
    }

    /// An accepted connection: its channel, and its share of the request memory pool (each request
    /// is given back once answered).
    struct Connection: Sendable {
        let channel: NIOAsyncChannel<ByteBuffer, IOData>
        let memory: RequestMemoryPool.Connection
    }

    /// Answers one connection's requests in order until it closes or sends something undecodable.
    private static func serve(
        _ accepted: Connection, dispatcher: RequestDispatcher, metrics: BrokerMetrics, malformed: MalformedRequestLog, logger: Logger
    ) async {
        let connection = accepted.channel
        let peer = connection.channel.remoteAddress.map { "\($0)" } ?? "?"
        let clientHost = connection.channel.remoteAddress?.ipAddress.map { "/\($0)" } ?? ""
        let zeroCopy = dispatcher.configuration.zeroCopyFetch
        metrics.connectionOpened()
        defer {
            metrics.connectionClosed()
            // Frames read but never answered (the connection failed or closed) are given back too.
            accepted.memory.close()
        }
        do {
            try await withTaskCancellationHandler {
                try await connection.executeThenClose { inbound, outbound in
                    for try await frame in inbound {
                        defer { accepted.memory.release(KafkaFraming.sizeLength + frame.readableBytes) }
                        // The frame starts with the API key and version (the size prefix is gone).
                        let api = frame.getInteger(at: frame.readerIndex, as: Int16.self) ?? -1
                        let version = frame.getInteger(at: frame.readerIndex + 2, as: Int16.self) ?? -1
                        metrics.received(bytes: 4 + frame.readableBytes)
                        let started = ContinuousClock.now
                        var trailingBytes = 0
                        let reply = try await dispatcher.respond(to: frame, trailingBytes: &trailingBytes, clientHost: clientHost)
                        if trailingBytes > 0 {
                            metrics.trailingBytes(api: api)
                            logger.debug(
                                "ignored bytes after a request's last field, as Kafka does",
                                metadata: ["peer": "\(peer)", "api": "\(api)", "version": "\(version)", "bytes": "\(trailingBytes)"])
                        }
                        if let response = reply {
                            metrics.sent(bytes: response.totalBytes)
                            switch response {
                            case .buffer(let buffer) where !zeroCopy:
                                try await outbound.write(.byteBuffer(buffer))
                            case .buffer(let buffer):
                                try await Self.write([.byteBuffer(buffer)], to: connection.channel, waiting: false)
                            case .spliced(let spliced):
                                try await Self.write(spliced.parts, to: connection.channel, waiting: true) { spliced.close() }
                            }
                        }
                        let elapsed = ContinuousClock.now - started
                        metrics.answered(api: api, version: version, nanoseconds: elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
                    }
                }
            } onCancel: {
                connection.channel.close(promise: nil)
            }
        } catch let error as ProtocolError {
            metrics.malformedRequest()
            malformed.closing(peer: peer, reason: "\(error)", logger: logger)
        } catch let error as FrameError {
            metrics.malformedRequest()
            malformed.closing(peer: peer, reason: "\(error)", logger: logger)
        } catch {
            // The peer went away (reset, closed mid-request) or the broker is stopping.
        }
    }

    /// Writes a response's parts in order, straight to the channel in one event loop task. With
    /// zero-copy fetch every response of the connection goes this way (not through the async
    /// writer, whose buffered responses a direct write could overtake), so responses keep their
    /// order. `written` runs once the last part is written or the write failed (the channel then
    /// fails every pending write, so it always runs). With `waiting` (file regions) or when the
    /// channel is over its high watermark, this returns only then: the connection reads no further
    /// request meanwhile, which bounds what it queues (Kafka mutes a connection until its response
    /// is sent).
    private static func write(
        _ parts: [IOData], to channel: any Channel, waiting: Bool, written: (@Sendable () -> Void)? = nil
    ) async throws {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        if let written { promise.futureResult.whenComplete { _ in written() } }
        channel.eventLoop.execute {
            for part in parts.dropLast() { channel.write(part, promise: nil) }
            channel.writeAndFlush(parts.last!, promise: promise)
        }
        if waiting || !channel.isWritable { try await promise.futureResult.get() }
    }

    /// Stops accepting, closes connections, then closes the logs (flushing them and marking the data
    /// directory clean). In a cluster it first hands the partitions it leads to other ISR members
    /// (controlled shutdown) unless `controlled` is false (as a crashed broker would: the controller
    /// then elects new leaders once the session is gone).
    public func stop(controlled: Bool = true) async throws {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        refusing.flag.store(true, ordering: .releasing)
        try? await serverChannel.channel.close()
        await metricsEndpoint?.close()
        // Leadership goes first (handed over when controlled): produces waiting for the high watermark
        // are answered NOT_LEADER_OR_FOLLOWER now instead of holding their connections (and this stop)
        // until their request timeout.
        await dispatcher.cluster?.resign(handingOver: controlled)
        let task = acceptLoop.withLock { $0 }
        await task?.value
        await dispatcher.groups.stop()
        await dispatcher.retention.stop()
        await dispatcher.cluster?.stop()
        let logs = logs
        let lock = lock
        try await io.runIfActive {
            defer { lock.release() }
            try logs.close()
        }
        try await group.shutdownGracefully()
        try await io.shutdownGracefully()
        configuration.logger.info("broker \(configuration.brokerId) stopped", metadata: ["broker": "\(configuration.brokerId)"])
    }
}

/// The flag `Broker.refusing` shares with the listener's connection initializer.
final class Refusing: Sendable {
    let flag = Atomic<Bool>(false)
}
