import SamsaCoordination
import Synchronization

/// Broker epochs (KIP-380), taken as Kafka's ZooKeeper-era controller takes them: the transaction
/// that created a broker's registration `/brokers/ids/N` (the node's czxid). A broker that restarts,
/// or whose session expired, registers anew and so gets a larger epoch, even when it came back
/// before anyone saw its old registration go.
///
/// A partition state whose last write (its mzxid) precedes its leader's registration names a leader
/// that was elected before that broker (re)started: the broker may have lost what it had not
/// flushed, and nobody has told it to lead since. The controller treats such a broker as one that
/// failed and then joined (it elects anew at the next leader epoch and takes the broker out of the
/// ISRs, where it comes back once caught up), and the broker does not lead from such a state.
struct BrokerEpochs: Sendable {
    /// Each live broker's epoch.
    var live: [BrokerID: Int64] = [:]
    /// Brokers whose epoch changed since the round before (restarted in between).
    var bounced: Set<BrokerID> = []

    /// The epochs of the brokers registered now, and which of them changed since `previous`.
    static func read(_ session: any CoordinationSession, paths: ClusterPaths, previous: BrokerEpochs?) async throws -> BrokerEpochs {
        var epochs = BrokerEpochs()
        for name in try await session.children(paths.brokerIds) {
            guard let id = BrokerID(name: name), let stat = try await session.exists(paths.broker(id)) else { continue }
            epochs.live[id] = stat.czxid
            if let before = previous?.live[id], before != stat.czxid { epochs.bounced.insert(id) }
        }
        return epochs
    }

    /// The brokers a partition state last written at `mzxid` must not count on: bounced ones, and
    /// its leader if it registered after that write.
    func stale(_ state: PartitionStateNode, writtenAt mzxid: Int64) -> Set<BrokerID> {
        var stale = bounced.intersection(state.isr + [state.leader])
        if let epoch = live[state.leader], epoch > mzxid { stale.insert(state.leader) }
        return stale
    }
}

/// This broker's own epoch: the czxid of its current registration (nil before it registers).
final class OwnBrokerEpoch: Sendable {
    private let value = Mutex<Int64?>(nil)

    var current: Int64? { value.withLock { $0 } }

    func set(_ epoch: Int64?) { value.withLock { $0 = epoch } }

    /// Whether a state node last written at `mzxid` that names this broker leader predates this
    /// broker's registration (so it must wait for the controller's new election).
    func predates(_ mzxid: Int64) -> Bool { current.map { mzxid < $0 } ?? false }
}
