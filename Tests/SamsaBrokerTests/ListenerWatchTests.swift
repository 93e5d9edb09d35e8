import Foundation
import Glibc
import SamsaCoordination
import SamsaProtocol
import SamsaTestSupport
import Testing
@testable import SamsaBroker

/// A broker whose process is gone while its session lives on (a SIGKILL: the session expires only
/// after its timeout): the controller moves its leaderships as soon as its listener refuses
/// connections, and not those of a broker whose listener accepts.
@Suite("Listener watch")
struct ListenerWatchTests {
    /// A TCP port on 127.0.0.1: listening (the kernel accepts connections without the process
    /// calling accept) or, when `listening` is false, bound and closed again, so nothing listens.
    static func port(listening: Bool) throws -> (port: Int32, descriptor: Int32) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                guard bind(descriptor, raw, length) == 0, getsockname(descriptor, raw, &length) == 0 else { throw POSIXError(.EADDRINUSE) }
            }
        }
        if listening { listen(descriptor, 16) } else { close(descriptor) }
        return (Int32(UInt16(bigEndian: address.sin_port)), listening ? descriptor : -1)
    }

    /// Registers broker `id` at `port` in `session` and creates topic `topic` with one partition that
    /// `id` leads, replicas [id, 1, 2], all in the ISR.
    static func ghost(_ id: BrokerID, port: Int32, topic: String, session: EmbeddedSession) async throws {
        let paths = ClusterPaths(root: "")
        _ = try await session.create(paths.broker(id), data: ClusterJSON.encode(BrokerRegistration(host: "127.0.0.1", port: port)), mode: .ephemeral)
        let assignment = TopicAssignment(topicId: KafkaUUID.random().text, partitions: ["0": [id, 1, 2]])
        let state = PartitionStateNode(leader: id, leaderEpoch: 0, isr: [id, 1, 2], controllerEpoch: 0)
        _ = try await session.multi([
            .create(path: paths.topicConfig(topic), data: ClusterJSON.encode(TopicConfigNode(config: [:])), mode: .persistent),
            .create(path: paths.topic(topic), data: ClusterJSON.encode(assignment), mode: .persistent),
            .create(path: paths.partitions(topic), data: [], mode: .persistent),
            .create(path: paths.partition(topic, 0), data: [], mode: .persistent),
            .create(path: paths.state(topic, 0), data: ClusterJSON.encode(state), mode: .persistent),
        ])
    }

    @Test("a leader whose listener refuses connections loses its leadership while its session lives; one whose listener accepts keeps it")
    func refusedLeaderIsReplaced() async throws {
        let cluster = try await TestCluster.start()
        let session = try cluster.coordinator.connect(sessionTimeout: .seconds(60))
        let accepting = try Self.port(listening: true)
        defer { close(accepting.descriptor) }
        do {
            try await Self.ghost(5, port: accepting.port, topic: "alive", session: session)
            try await Self.ghost(4, port: try Self.port(listening: false).port, topic: "gone", session: session)
            try await eventually("another replica leads the partition broker 4 led") {
                let state = try await cluster.state("gone")
                return state.leader != 4 && state.leaderEpoch > 0
            }
            let moved = try await cluster.state("gone")
            #expect(moved.leader == 1 && moved.isr == [1, 2], "\(moved)")
            // Its registration (its session) is still there: the listener's refusal alone moved it.
            #expect(try await session.exists(ClusterPaths(root: "").broker(4)) != nil)
            let kept = try await cluster.state("alive")
            #expect(kept.leader == 5 && kept.leaderEpoch == 0 && kept.isr == [5, 1, 2], "\(kept)")
        } catch {
            await session.close()
            try await cluster.stopAll()
            throw error
        }
        await session.close()
        try await cluster.stopAll()
    }
}
