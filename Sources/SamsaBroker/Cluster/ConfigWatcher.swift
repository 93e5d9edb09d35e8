import Logging
import SamsaCoordination
import Synchronization

/// Applies the cluster's configs to this broker as they change in coordination (Kafka's
/// `DynamicConfigManager`, with a watch on each config node instead of a change-notification
/// sequence): each topic's `/config/topics/<topic>` goes to `TopicTable.alterConfig`, which stores
/// it beside the logs and reconfigures them; `/config/brokers/<default>` and `/config/brokers/<id>`
/// go to `BrokerConfigs`, after which every log is reconfigured. Started and stopped with the
/// broker's coordination session (`Cluster`).
final class ConfigWatcher: Sendable {
    private let session: any CoordinationSession
    private let paths: ClusterPaths
    private let topics: TopicTable
    private let logger: Logger
    private let tasks = BackgroundTasks()
    /// Topics whose config node a task follows.
    private let followed = Mutex<Set<String>>([])

    init(session: any CoordinationSession, paths: ClusterPaths, topics: TopicTable, logger: Logger) {
        self.session = session
        self.paths = paths
        self.topics = topics
        self.logger = logger
    }

    func start() {
        tasks.start { await self.followTopics() }
        for entity in [BrokerConfigs.Entity.clusterDefault, .broker(topics.brokerConfigs.brokerId)] {
            tasks.start { await self.follow(entity) }
        }
    }

    func stop() async {
        await tasks.stop()
        followed.withLock { $0.removeAll() }
    }

    /// Starts following each topic's config node as it appears.
    private func followTopics() async {
        while !Task.isCancelled {
            do {
                let (names, _, watch) = try await session.children(paths.topicConfigs, watch: true)
                for name in names { startFollowing(name) }
                _ = try await watch?.event()
            } catch {
                if await retryLater(error, "following the topic configs failed (retrying)") { return }
            }
        }
    }

    /// Starts a task following the topic's config node unless one does.
    private func startFollowing(_ name: String) {
        guard followed.withLock({ $0.insert(name).inserted }) else { return }
        tasks.start { await self.follow(topic: name) }
    }

    private func follow(topic name: String) async {
        let path = paths.topicConfig(name)
        defer {
            followed.withLock { _ = $0.remove(name) }
            // Deleted and made again while this task was ending: `followTopics` saw the name while it
            // was still followed here, so this one starts the next follower.
            if !Task.isCancelled {
                tasks.start { [self] in
                    if (try? await session.exists(path)) != nil { startFollowing(name) }
                }
            }
        }
        // While the topic is not held here, how long until the next try (doubling up to 5 s).
        var retry = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                let (data, _, watch) = try await session.data(path, watch: true)
                let node = try ClusterJSON.decode(TopicConfigNode.self, data)
                var applied = true
                switch TopicConfig.validate(node.config.map { ($0.key, $0.value) }) {
                case .success(let config):
                    let replace: TopicTable.ConfigChange = { _ in config }
                    applied = try await topics.alterConfigs([(name, replace)]).first?.get() != nil
                case .failure(let problem):
                    logger.error("a topic's configs in coordination are not valid: left as they were", metadata: ["topic": "\(name)", "error": "\(problem.message)"])
                }
                // Not held here yet (its logs are being made, or cannot be): try again later as well as on a change.
                if applied {
                    retry = .milliseconds(100)
                    _ = try await watch?.event()
                } else {
                    await Self.first(watch, orAfter: retry)
                    retry = min(retry * 2, .seconds(5))
                }
            } catch let error as CoordinationError where error.code == .noNode {
                return  // deleted with its topic
            } catch {
                if await retryLater(error, "applying a topic's configs failed (retrying)", ["topic": "\(name)"]) { return }
            }
        }
    }

    private func follow(_ entity: BrokerConfigs.Entity) async {
        let path = paths.brokerConfig(entity)
        while !Task.isCancelled {
            do {
                var values: [String: String] = [:]
                let watch: Watch?
                do {
                    let (data, _, dataWatch) = try await session.data(path, watch: true)
                    values = try ClusterJSON.decode(TopicConfigNode.self, data).config
                    watch = dataWatch
                } catch let error as CoordinationError where error.code == .noNode {
                    let (stat, existsWatch) = try await session.exists(path, watch: true)
                    if stat != nil { continue }  // made meanwhile: read it
                    watch = existsWatch
                }
                if let problem = values.lazy.compactMap({ name, value in TopicConfig.check(name, value, key: ConfigKeys.byBrokerName[name], kind: "dynamic broker") }).first {
                    logger.error("dynamic broker configs in coordination are not valid: left as they were", metadata: ["entity": "\(entity)", "error": "\(problem.message)"])
                } else if topics.brokerConfigs.replace(entity, with: values) {
                    await topics.reapplyBrokerConfigs()
                    logger.info("dynamic broker configs applied", metadata: ["entity": "\(entity)", "configs": "\(values.sorted { $0.key < $1.key })"])
                }
                _ = try await watch?.event()
            } catch {
                if await retryLater(error, "following dynamic broker configs failed (retrying)", ["entity": "\(entity)"]) { return }
            }
        }
    }

    /// After a failure: true when the session has ended (the loop then stops), else after a pause.
    private func retryLater(_ error: any Error, _ message: Logger.Message, _ metadata: Logger.Metadata = [:]) async -> Bool {
        if session.state == .expired || session.state == .closed || Task.isCancelled { return true }
        logger.debug(message, metadata: metadata.merging(["error": "\(error)"]) { $1 })
        try? await Task.sleep(for: .milliseconds(200))
        return false
    }

    /// Returns when the watch fires or after `delay`.
    private static func first(_ watch: Watch?, orAfter delay: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            if let watch { group.addTask { _ = try? await watch.event() } }
            group.addTask { try? await Task.sleep(for: delay) }
            await group.next()
            group.cancelAll()
        }
    }
}
