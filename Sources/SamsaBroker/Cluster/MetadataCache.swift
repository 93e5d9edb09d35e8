import Logging
import SamsaCoordination
import SamsaProtocol
import Synchronization

/// The cluster's metadata as this broker answers clients with it (Kafka's `MetadataCache`): the live
/// brokers, the controller, each topic's assignment (id, replicas, adding/removing replicas) and each
/// partition's state, kept current by one coordination watch per node, so a Metadata request reads
/// nothing from coordination. Started and stopped with the broker's coordination session (`Cluster`):
/// stopping clears it. What it does not hold yet (the session just opened; a topic made through
/// another broker whose watch has not fired) is read from coordination, and a topic read so is filled
/// in and followed from then on. Partition states may be behind by a watch round trip, as in Kafka
/// (clients retry NOT_LEADER_OR_FOLLOWER and refresh).
final class MetadataCache: Sendable {
    /// A value read from a node, with the transaction that last wrote it (`mzxid`): a read never
    /// replaces a newer one, whichever task makes it.
    struct Stamped<Value: Sendable>: Sendable {
        var value: Value
        var zxid: Int64
    }

    /// A topic's assignment and the states of its partitions read so far (nil: not valid JSON).
    struct Topic: Sendable {
        var assignment: Stamped<TopicAssignment>
        var states: [Int32: Stamped<PartitionStateNode?>] = [:]

        /// The topic as Metadata shows it, once every partition's state has been read.
        var view: TopicView? { (0..<assignment.value.partitionCount).allSatisfy { states[$0] != nil } ? shown : nil }

        /// The topic as Metadata shows it, a partition whose state is not held without one.
        var shown: TopicView {
            let assignment = assignment.value
            let partitions = (0..<assignment.partitionCount).map { index in
                PartitionView(index: index, replicas: assignment.replicas(index), state: states[index]?.value)
            }
            return TopicView(id: assignment.id ?? .zero, partitions: partitions)
        }
    }

    private struct Follower {
        var id: Int
        var task: Task<Void, Never>
    }

    private struct State {
        var running = false
        /// nil until read.
        var brokers: [BrokerID: BrokerRegistration]?
        /// nil until read; then the controller, nil while there is none.
        var controller: BrokerID??
        /// `/brokers/topics`' children; nil until read.
        var names: Set<String>?
        var topics: [String: Topic] = [:]
        /// The task following each topic's nodes.
        var followers: [String: Follower] = [:]
        var nextFollower = 0

        mutating func merge(_ name: String, _ assignment: Stamped<TopicAssignment>) {
            guard var topic = topics[name] else {
                topics[name] = Topic(assignment: assignment)
                return
            }
            guard assignment.zxid >= topic.assignment.zxid else { return }
            topic.assignment = assignment
            topic.states = topic.states.filter { $0.key < assignment.value.partitionCount }
            topics[name] = topic
        }

        mutating func merge(_ name: String, _ partition: Int32, _ state: Stamped<PartitionStateNode?>?) {
            guard topics[name] != nil else { return }
            if let state, let held = topics[name]?.states[partition], held.zxid > state.zxid { return }
            topics[name]?.states[partition] = state
        }
    }

    private let session: any CoordinationSession
    private let paths: ClusterPaths
    private let logger: Logger
    private let state = Mutex(State())
    private let tasks = BackgroundTasks()

    init(session: any CoordinationSession, paths: ClusterPaths, logger: Logger) {
        self.session = session
        self.paths = paths
        self.logger = logger
    }

    func start() {
        state.withLock { $0.running = true }
        tasks.start { await self.followBrokers() }
        tasks.start { await self.followController() }
        tasks.start { await self.followTopics() }
    }

    /// Stops every watch and forgets everything (a new session starts from coordination again).
    func stop() async {
        await tasks.stop()
        let followers = state.withLock { state in
            state.running = false
            return state.followers.values.map(\.task)
        }
        for follower in followers { follower.cancel() }
        for follower in followers { await follower.value }
        state.withLock { $0 = State() }
    }

    /// Whether the brokers, the controller and the topic list have been read, and every listed topic
    /// is held (a request then reads nothing from coordination).
    var loaded: Bool {
        state.withLock { state in
            guard state.brokers != nil, state.controller != nil, let names = state.names else { return false }
            return names.allSatisfy { state.topics[$0]?.view != nil }
        }
    }

    /// The topics held, and those a task follows.
    var held: (topics: Set<String>, followed: Set<String>) { state.withLock { (Set($0.topics.keys), Set($0.followers.keys)) } }

    // MARK: Reads for requests

    func liveBrokers() async throws -> [BrokerID: BrokerRegistration] {
        if let brokers = state.withLock({ $0.brokers }) { return brokers }
        return try await readBrokers()
    }

    func controller() async -> BrokerID? {
        if let controller = state.withLock({ $0.controller }) { return controller }
        return try? await readController()
    }

    func topicNames() async throws -> [String] {
        if let names = state.withLock({ $0.names }) { return names.sorted() }
        return try await session.children(paths.topics).sorted()
    }

    /// The topic's id and partitions, or nil if it does not exist. One the cache does not hold yet is
    /// read from coordination, then held and followed.
    func topic(_ name: String) async throws -> TopicView? {
        if let view = state.withLock({ $0.topics[name]?.view }) { return view }
        return try await refresh(name)
    }

    /// The name of the topic with this id (held ones first; otherwise every assignment is read).
    func topicName(id: KafkaUUID) async throws -> String? {
        if let name = state.withLock({ $0.topics.first { $0.value.assignment.value.id == id }?.key }) { return name }
        for name in try await session.children(paths.topics) where try await assignment(of: name)?.value.id == id { return name }
        return nil
    }

    /// Reads the topic from coordination and holds what it read (after this broker changed it, so a
    /// request through it sees its own change at once); nil if it does not exist.
    @discardableResult
    func refresh(_ name: String) async throws -> TopicView? {
        guard let assignment = try await assignment(of: name) else { return nil }
        var topic = Topic(assignment: assignment)
        for index in 0..<assignment.value.partitionCount {
            topic.states[index] = try await partitionState(name, index)
        }
        hold(name, topic)
        return topic.shown
    }

    /// Forgets a topic this broker just deleted (its follower sees the deletion and ends).
    func forget(_ name: String) {
        state.withLock { state in
            state.topics[name] = nil
            state.names?.remove(name)
        }
    }

    private func hold(_ name: String, _ topic: Topic) {
        let follow = state.withLock { state -> Bool in
            guard state.running else { return false }
            state.merge(name, topic.assignment)
            for (index, partition) in topic.states { state.merge(name, index, partition) }
            state.names?.insert(name)
            return true
        }
        if follow { self.follow(name) }
    }

    // MARK: Coordination reads

    private func readBrokers() async throws -> [BrokerID: BrokerRegistration] {
        var brokers: [BrokerID: BrokerRegistration] = [:]
        for name in try await session.children(paths.brokerIds) {
            guard let id = BrokerID(name: name) else { continue }
            if let data = try? await session.data(paths.broker(id)).data, let registration = try? ClusterJSON.decode(BrokerRegistration.self, data) {
                brokers[id] = registration
            }
        }
        return brokers
    }

    private func readController() async throws -> BrokerID? {
        do {
            let data = try await session.data(paths.controller).data
            return (try? ClusterJSON.decode(ControllerNode.self, data))?.brokerid
        } catch let error as CoordinationError where error.code == .noNode {
            return nil
        }
    }

    private func assignment(of name: String) async throws -> Stamped<TopicAssignment>? {
        do {
            let (data, stat) = try await session.data(paths.topic(name))
            return Stamped(value: try ClusterJSON.decode(TopicAssignment.self, data), zxid: stat.mzxid)
        } catch let error as CoordinationError where error.code == .noNode {
            return nil
        }
    }

    /// nil if the node does not exist; a nil value if it is not valid JSON.
    private func partitionState(_ name: String, _ partition: Int32) async throws -> Stamped<PartitionStateNode?>? {
        do {
            let (data, stat) = try await session.data(paths.state(name, partition))
            return Stamped(value: try? ClusterJSON.decode(PartitionStateNode.self, data), zxid: stat.mzxid)
        } catch let error as CoordinationError where error.code == .noNode {
            return nil
        }
    }

    // MARK: Watches

    /// `/brokers/ids`: on each change of the list every registration is read again (brokers are few;
    /// a restarted broker's node is made anew, which changes the list).
    private func followBrokers() async {
        while !Task.isCancelled {
            do {
                let (_, _, watch) = try await session.children(paths.brokerIds, watch: true)
                let brokers = try await readBrokers()
                state.withLock { $0.brokers = brokers }
                _ = try await watch?.event()
            } catch {
                if await retryLater(error, "following the live brokers failed (retrying)") { return }
            }
        }
    }

    private func followController() async {
        while !Task.isCancelled {
            do {
                let watch: Watch?
                var controller: BrokerID?
                do {
                    let (data, _, dataWatch) = try await session.data(paths.controller, watch: true)
                    controller = (try? ClusterJSON.decode(ControllerNode.self, data))?.brokerid
                    watch = dataWatch
                } catch let error as CoordinationError where error.code == .noNode {
                    let (stat, existsWatch) = try await session.exists(paths.controller, watch: true)
                    if stat != nil { continue }  // made meanwhile: read it
                    watch = existsWatch
                }
                state.withLock { $0.controller = .some(controller) }
                _ = try await watch?.event()
            } catch {
                if await retryLater(error, "following the controller failed (retrying)") { return }
            }
        }
    }

    /// `/brokers/topics`: a follower for each topic listed. A deleted topic's follower ends by itself.
    private func followTopics() async {
        while !Task.isCancelled {
            do {
                let (names, _, watch) = try await session.children(paths.topics, watch: true)
                state.withLock { $0.names = Set(names) }
                for name in names { follow(name) }
                _ = try await watch?.event()
            } catch {
                if await retryLater(error, "following the topics failed (retrying)") { return }
            }
        }
    }

    /// Starts the topic's follower unless it has one.
    private func follow(_ name: String) {
        state.withLock { state in
            guard state.running, state.followers[name] == nil else { return }
            state.nextFollower += 1
            let id = state.nextFollower
            state.followers[name] = Follower(id: id, task: Task { await self.followTopic(name, follower: id) })
        }
    }

    /// Follows the topic until it is deleted, then drops it. Re-created under its name meanwhile
    /// (another creation transaction), its partitions are followed afresh.
    private func followTopic(_ name: String, follower: Int) async {
        var outcome = Incarnation.recreated
        while outcome == .recreated { outcome = await followIncarnation(name) }
        guard outcome == .deleted else { return }
        state.withLock { state in
            state.topics[name] = nil
            if state.followers[name]?.id == follower { state.followers[name] = nil }
        }
        logger.debug("metadata cache: topic deleted", metadata: ["topic": "\(name)"])
        // Re-created after the deletion, its follower may have been skipped while this one ended.
        if !Task.isCancelled, (try? await session.exists(paths.topic(name))) != nil { follow(name) }
    }

    private enum Incarnation { case deleted, recreated, ended }

    /// Follows one incarnation of the topic: its assignment node and a task per partition's state
    /// node, until it is deleted or made anew under its name, or the session or the cache stops.
    private func followIncarnation(_ name: String) async -> Incarnation {
        await withDiscardingTaskGroup { group in
            defer { group.cancelAll() }
            var created: Int64?
            var followed: Int32 = 0
            while !Task.isCancelled {
                do {
                    let (data, stat, watch) = try await session.data(paths.topic(name), watch: true)
                    if created == nil { created = stat.czxid }
                    guard created == stat.czxid else { return .recreated }
                    if let assignment = try? ClusterJSON.decode(TopicAssignment.self, data) {
                        state.withLock { $0.merge(name, Stamped(value: assignment, zxid: stat.mzxid)) }
                        for partition in followed..<max(followed, assignment.partitionCount) {
                            group.addTask { await self.followState(name, partition) }
                        }
                        followed = max(followed, assignment.partitionCount)
                    } else {
                        logger.error("a topic's assignment in coordination is not valid JSON: metadata left as it was", metadata: ["topic": "\(name)"])
                    }
                    _ = try await watch?.event()
                } catch let error as CoordinationError where error.code == .noNode {
                    return .deleted
                } catch {
                    if await retryLater(error, "following a topic's assignment failed (retrying)", ["topic": "\(name)"]) { return .ended }
                }
            }
            return .ended
        }
    }

    private func followState(_ name: String, _ partition: Int32) async {
        while !Task.isCancelled {
            do {
                let (data, stat, watch) = try await session.data(paths.state(name, partition), watch: true)
                let node = try? ClusterJSON.decode(PartitionStateNode.self, data)
                if node == nil {
                    logger.error("a partition's state in coordination is not valid JSON", metadata: ["topic": "\(name)", "partition": "\(partition)"])
                }
                state.withLock { $0.merge(name, partition, Stamped(value: node, zxid: stat.mzxid)) }
                _ = try await watch?.event()
            } catch let error as CoordinationError where error.code == .noNode {
                state.withLock { $0.merge(name, partition, nil) }
                return  // deleted with its topic (its assignment's follower ends this incarnation)
            } catch {
                if await retryLater(error, "following a partition's state failed (retrying)", ["topic": "\(name)", "partition": "\(partition)"]) {
                    return
                }
            }
        }
    }

    /// After a failure: true when the session has ended or the task is cancelled (the loop then
    /// stops; `Cluster` restarts the cache with the next session), else after a pause.
    private func retryLater(_ error: any Error, _ message: Logger.Message, _ metadata: Logger.Metadata = [:]) async -> Bool {
        if Task.isCancelled || session.state == .expired || session.state == .closed { return true }
        logger.debug(message, metadata: metadata.merging(["error": "\(error)"]) { $1 })
        try? await Task.sleep(for: .milliseconds(200))
        return Task.isCancelled
    }
}
