import Foundation
import SamsaClient
import SamsaTestSupport
import Testing

/// `samsa reassign` against a single broker (a cluster of one, broker 0): its only valid target is
/// [0]; the client's AlterPartitionReassignments / ListPartitionReassignments errors reach the tool.
/// Moves between brokers are ReassignmentTests' (SamsaBrokerTests).
@Suite("samsa reassign", .offCooperativePool)
struct ReassignToolTests {
    @Test("--replicas, --cancel and --list (text and --json) with Kafka's errors; bad flags refused")
    func reassign() async throws {
        try await ClientTestBroker.with { broker, client in
            let address = broker.bootstrap
            try await client.createTopics([NewTopic(name: "moves", partitions: 1)])
            let moved = try await runSamsaTool(["reassign", "--bootstrap", address, "--topic", "moves", "--partition", "0", "--replicas", "0"])
            #expect(moved.status == 0 && moved.stdout == "reassigning moves-0 to 0\n", "\(moved.stderr)")
            let json = try await runSamsaTool(["reassign", "--bootstrap", address, "--topic", "moves", "--partition", "0", "--replicas", "0", "--json"])
            #expect(json.status == 0 && json.stdout == #"{"topic":"moves","partition":0,"cancelled":false,"replicas":[0]}"# + "\n", "\(json.stdout) \(json.stderr)")

            let elsewhere = try await runSamsaTool(["reassign", "--bootstrap", address, "--topic", "moves", "--partition", "0", "--replicas", "0,1"])
            #expect(elsewhere.status == 1 && elsewhere.stderr.contains("INVALID_REPLICA_ASSIGNMENT"), "\(elsewhere.stderr)")
            let unknown = try await runSamsaTool(["reassign", "--bootstrap", address, "--topic", "moves", "--partition", "3", "--replicas", "0"])
            #expect(unknown.status == 1 && unknown.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "\(unknown.stderr)")
            let cancelled = try await runSamsaTool(["reassign", "--bootstrap", address, "--topic", "moves", "--partition", "0", "--cancel"])
            #expect(cancelled.status == 1 && cancelled.stderr.contains("NO_REASSIGNMENT_IN_PROGRESS"), "\(cancelled.stderr)")

            let listed = try await runSamsaTool(["reassign", "--bootstrap", address, "--list"])
            #expect(listed.status == 0 && listed.stdout == "no reassignments in progress\n", "\(listed.stderr)")
            let listedJSON = try await runSamsaTool(["reassign", "--bootstrap", address, "--list", "--json"])
            #expect(listedJSON.status == 0 && listedJSON.stdout == #"{"reassignments":[]}"# + "\n", "\(listedJSON.stderr)")
            #expect(try await client.listPartitionReassignments().isEmpty)

            for flags in [["--replicas", "0,x"], ["--replicas", "0", "--cancel"], ["--list", "--cancel"], []] {
                let refused = try await runSamsaTool(["reassign", "--bootstrap", address, "--topic", "moves", "--partition", "0"] + flags)
                #expect(refused.status != 0 && refused.status != 1, "\(flags): \(refused.status) \(refused.stderr)")
            }
        }
    }
}
