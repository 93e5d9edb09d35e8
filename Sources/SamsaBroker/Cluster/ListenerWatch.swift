import Logging
import NIOCore
import SamsaCoordination
import Synchronization

/// Tells which registered brokers' processes are gone before their sessions expire: every broker
/// holds an idle TCP connection to each other registered broker's listener (as Kafka's controller
/// holds one to every broker), and when it closes, connects again at once. A refused connection
/// (ECONNREFUSED: nothing listens on that port) marks the broker gone at its registration's epoch
/// (KIP-380); a timeout or an unreachable host marks nothing, since a stopped or cut-off process may
/// still hold its leaderships, and only its session's expiry may declare it dead.
///
/// The controller treats a marked broker as failed (`ClusterController.elect`) until its
/// registration changes (a restart) or its listener accepts again. A marked broker that is the
/// controller loses its `/controller` node to the first broker that sees it (a delete checked
/// against the node's version and owner), so another broker takes control without waiting for
/// the dead one's session to expire.
final class ListenerWatch: Sendable {
    /// A broker's registration as watched: its epoch and session tell a restart from the same process.
    struct Registered: Sendable, Hashable {
        var id: BrokerID
        var epoch: Int64
        var owner: Int64
        var host: String
        var port: Int
    }

    private let brokerId: BrokerID
    private let paths: ClusterPaths
    private let session: any CoordinationSession
    private let group: any EventLoopGroup
    private let logger: Logger
    /// Woken whenever a broker is marked gone or comes back.
    private let news: ReassignmentWork
    private let tasks = BackgroundTasks()
    /// One task per watched registration.
    private let held = Mutex<[Registered: Task<Void, Never>]>([:])
    /// Brokers whose listener refused, with the registration epoch it refused at.
    private let marks = Mutex<[BrokerID: Int64]>([:])
    /// How soon a refusing listener is asked again (a spurious refusal ends after about this).
    static let retry = Duration.milliseconds(250)

    init(brokerId: BrokerID, paths: ClusterPaths, session: any CoordinationSession, group: any EventLoopGroup, news: ReassignmentWork, logger: Logger) {
        self.brokerId = brokerId
        self.paths = paths
        self.session = session
        self.group = group
        self.news = news
        self.logger = logger
    }

    func start() {
        tasks.start { await self.run() }
    }

    func stop() async {
        await tasks.stop()
        let all = held.withLock { table in
            defer { table.removeAll() }
            return Array(table.values)
        }
        for task in all { task.cancel() }
        for task in all { await task.value }
        marks.withLock { $0.removeAll() }
    }

    /// The brokers to treat as failed in a round that read `epochs`: those whose listener refused at
    /// the registration they still have.
    func gone(_ epochs: BrokerEpochs) -> Set<BrokerID> {
        marks.withLock { marks in Set(marks.filter { epochs.live[$0.key] == $0.value }.keys) }
    }

    /// Follows `/brokers/ids`: a task per other broker's registration, ended when it goes or changes.
    private func run() async {
        while !Task.isCancelled {
            do {
                let (names, _, watch) = try await session.children(paths.brokerIds, watch: true)
                var current: Set<Registered> = []
                for name in names {
                    guard let id = BrokerID(name: name), id != brokerId else { continue }
                    do {
                        let (data, stat) = try await session.data(paths.broker(id))
                        let registration = try ClusterJSON.decode(BrokerRegistration.self, data)
                        current.insert(Registered(id: id, epoch: stat.czxid, owner: stat.ephemeralOwner, host: registration.host, port: Int(registration.port)))
                    } catch let error as CoordinationError where error.code == .noNode {
                        continue
                    }
                }
                track(current)
                _ = try await watch?.event()
            } catch {
                if !Task.isCancelled { try? await Task.sleep(for: Self.retry) }
            }
        }
    }

    /// Starts holding the new registrations, stops holding those gone, and forgets their marks.
    private func track(_ current: Set<Registered>) {
        let ended = held.withLock { table -> [Task<Void, Never>] in
            var ended: [Task<Void, Never>] = []
            for (registration, task) in table where !current.contains(registration) {
                ended.append(task)
                table.removeValue(forKey: registration)
            }
            for registration in current where table[registration] == nil {
                table[registration] = Task { await self.hold(registration) }
            }
            return ended
        }
        for task in ended { task.cancel() }
        let epochs = Dictionary(uniqueKeysWithValues: current.map { ($0.id, $0.epoch) })
        marks.withLock { marks in marks = marks.filter { epochs[$0.key] == $0.value } }
    }

    /// Keeps a connection to the broker's listener; each time it closes, connects again to learn why.
    private func hold(_ registration: Registered) async {
        while !Task.isCancelled {
            switch await ListenerProbe.connect(host: registration.host, port: registration.port, group: group) {
            case .accepted(let channel):
                accepted(registration)
                let opened = ContinuousClock.now
                await withTaskCancellationHandler {
                    try? await channel.closeFuture.get()
                } onCancel: {
                    channel.close(promise: nil)
                }
                // Closed at once (a peer's connection limit, or a peer stopping that still accepts):
                // wait before the next try rather than spin on both brokers.
                if ContinuousClock.now - opened < .seconds(1) { try? await Task.sleep(for: Self.retry) }
            case .refused:
                await refused(registration)
                try? await Task.sleep(for: Self.retry)
            case .unanswered:
                try? await Task.sleep(for: Self.retry)
            }
        }
    }

    private func accepted(_ registration: Registered) {
        let was = marks.withLock { $0[registration.id] == registration.epoch ? $0.removeValue(forKey: registration.id) : nil }
        guard was != nil else { return }
        logger.warning(
            "a broker's listener accepts connections again at the same registration: live again (out of the isrs it left, it rejoins them once caught up)",
            metadata: ["peer": "\(registration.id)", "broker_epoch": "\(registration.epoch)"])
        news.wake()
    }

    private func refused(_ registration: Registered) async {
        let marked = marks.withLock { marks in
            defer { marks[registration.id] = registration.epoch }
            return marks[registration.id] != registration.epoch
        }
        if marked {
            logger.warning(
                "a broker's listener refuses connections (its process is gone): treated as failed until it registers again",
                metadata: ["peer": "\(registration.id)", "broker_epoch": "\(registration.epoch)"])
            news.wake()
        }
        await dropController(of: registration)
    }

    /// Deletes `/controller` if the gone broker's session holds it, so a live broker takes control.
    private func dropController(of registration: Registered) async {
        do {
            let (data, stat) = try await session.data(paths.controller)
            guard stat.ephemeralOwner == registration.owner, try ClusterJSON.decode(ControllerNode.self, data).brokerid == registration.id else { return }
            try await session.delete(paths.controller, version: stat.version)
            logger.warning(
                "the controller's listener refuses connections: removed its /controller node so that a live broker takes control",
                metadata: ["peer": "\(registration.id)", "broker_epoch": "\(registration.epoch)"])
        } catch {
            // Gone already (another broker removed it), or coordination unreachable: the next refusal retries.
        }
    }
}
