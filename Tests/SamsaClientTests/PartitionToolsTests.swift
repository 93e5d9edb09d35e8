import Foundation
import SamsaClient
import SamsaTestSupport
import Testing

/// `samsa topics add-partitions` and `samsa leaders elect` against a single broker (a cluster of one),
/// with Kafka's errors reaching the tool. Elections across brokers are ElectLeadersTests' (SamsaBrokerTests).
@Suite("samsa topics add-partitions and leaders elect", .offCooperativePool)
struct PartitionToolsTests {
    @Test("add-partitions grows a topic (text, --json, --validate-only); fewer or unknown are refused with Kafka's error")
    func addPartitions() async throws {
        try await ClientTestBroker.with { broker, client in
            let address = broker.bootstrap
            try await client.createTopics([NewTopic(name: "grow", partitions: 1)])
            let dry = try await runSamsaTool(["topics", "add-partitions", "--bootstrap", address, "--topic", "grow", "--partitions", "3", "--validate-only"])
            #expect(dry.status == 0 && dry.stdout == "topic grow can grow to 3 partitions (nothing changed)\n", "\(dry.stderr)")
            #expect(try await client.refreshMetadata(topics: ["grow"]).topics["grow"]?.partitions.count == 1)
            let grown = try await runSamsaTool(["topics", "add-partitions", "--bootstrap", address, "--topic", "grow", "--partitions", "3"])
            #expect(grown.status == 0 && grown.stdout == "topic grow now has 3 partitions\n", "\(grown.stderr)")
            #expect(try await client.refreshMetadata(topics: ["grow"]).topics["grow"]?.partitions.count == 3)
            let json = try await runSamsaTool(["topics", "add-partitions", "--bootstrap", address, "--topic", "grow", "--partitions", "4", "--json"])
            #expect(json.stdout == #"{"topic":"grow","partitions":4,"validate_only":false}"# + "\n", "\(json.stderr)")
            let fewer = try await runSamsaTool(["topics", "add-partitions", "--bootstrap", address, "--topic", "grow", "--partitions", "2"])
            #expect(fewer.status == 1 && fewer.stderr.contains("INVALID_PARTITIONS"), "\(fewer.stderr)")
            let unknown = try await runSamsaTool(["topics", "add-partitions", "--bootstrap", address, "--topic", "nope", "--partitions", "2"])
            #expect(unknown.status == 1 && unknown.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "\(unknown.stderr)")
            let zero = try await runSamsaTool(["topics", "add-partitions", "--bootstrap", address, "--topic", "grow", "--partitions", "0"])
            #expect(zero.status != 0 && zero.stderr.contains("--partitions must be positive"))
            #expect(try await client.refreshMetadata(topics: ["grow"]).topics["grow"]?.partitions.count == 4)
        }
    }

    @Test("leaders elect: the only replica leads already (ELECTION_NOT_NEEDED), all partitions need none; bad flags refused")
    func elect() async throws {
        try await ClientTestBroker.with { broker, client in
            let address = broker.bootstrap
            try await client.createTopics([NewTopic(name: "led", partitions: 2)])
            let one = try await runSamsaTool(["leaders", "elect", "--bootstrap", address, "--topic", "led", "--partition", "1"])
            #expect(one.status == 0 && one.stdout == "led-1: ELECTION_NOT_NEEDED\n", "\(one.stdout) \(one.stderr)")
            let topic = try await runSamsaTool(["leaders", "elect", "--bootstrap", address, "--topic", "led", "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(topic.stdout.utf8)) as? [String: Any], "\(topic.stderr)")
            let elections = try #require(object["elections"] as? [[String: Any]])
            #expect(elections.count == 2 && elections.allSatisfy { $0["error"] as? String == "ELECTION_NOT_NEEDED" })
            let all = try await runSamsaTool(["leaders", "elect", "--bootstrap", address])
            #expect(all.status == 0 && all.stdout == "no partition needed an election\n", "\(all.stdout) \(all.stderr)")
            let unclean = try await runSamsaTool(["leaders", "elect", "--bootstrap", address, "--topic", "led", "--partition", "0", "--type", "unclean"])
            #expect(unclean.status == 0 && unclean.stdout.hasPrefix("led-0: "), "\(unclean.stdout) \(unclean.stderr)")
            let unknown = try await runSamsaTool(["leaders", "elect", "--bootstrap", address, "--topic", "led", "--partition", "9"])
            #expect(unknown.status == 0 && unknown.stdout == "led-9: UNKNOWN_TOPIC_OR_PARTITION\n", "\(unknown.stdout) \(unknown.stderr)")
            let bad = try await runSamsaTool(["leaders", "elect", "--bootstrap", address, "--type", "random"])
            #expect(bad.status != 0 && bad.stderr.contains("--type is preferred or unclean"))
            let orphan = try await runSamsaTool(["leaders", "elect", "--bootstrap", address, "--partition", "1"])
            #expect(orphan.status != 0 && orphan.stderr.contains("--partition needs --topic"))
        }
    }
}
