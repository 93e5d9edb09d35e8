import Foundation
import SamsaClient
import SamsaTestSupport
import Testing

/// `samsa groups list|describe|delete|delete-offsets|reset-offsets --bootstrap` against a broker,
/// text and --json, each effect read back with the client.
@Suite("samsa groups", .offCooperativePool)
struct GroupsToolTests {
    static let p0 = TopicPartitionID(topic: "orders", partition: 0)
    static let p1 = TopicPartitionID(topic: "orders", partition: 1)

    @Test("list and describe: state, and per partition current offset, log end offset, lag and member")
    func listAndDescribe() async throws {
        try await ClientTestBroker.with { broker, client in
            try await ClientGroupsTests.topic("orders", partitions: 2, records: 5, client)
            try await client.commitOffsets(group: "idle", [Self.p0: 3])
            let member = try await ClientGroupsTests.liveMember("live", topic: "orders", assigned: [1], client)
            let listed = try await runSamsaTool(["groups", "list", "--bootstrap", broker.bootstrap])
            #expect(listed.status == 0 && listed.stdout == "idle Empty -\nlive Stable consumer\n", "\(listed.stderr)")
            let json = try await runSamsaTool(["groups", "list", "--bootstrap", broker.bootstrap, "--json"])
            #expect(json.stdout == #"[{"group":"idle","protocolType":"","state":"Empty"},{"group":"live","protocolType":"consumer","state":"Stable"}]"# + "\n")

            let idle = try await runSamsaTool(["groups", "describe", "--bootstrap", broker.bootstrap, "--group", "idle"])
            #expect(idle.status == 0, "\(idle.stderr)")
            #expect(idle.stdout == """
                Consumer group 'idle' has no active members.

                GROUP  TOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST  CLIENT-ID
                idle   orders  0          3               5               2    -            -     -

                """)
            let live = try await runSamsaTool(["groups", "describe", "--bootstrap", broker.bootstrap, "--group", "live", "--json"])
            #expect(live.status == 0, "\(live.stderr)")
            #expect(live.stdout == """
                [{"group":"live","members":1,"partitions":[{"clientId":"samsa","consumerId":"\(member)","host":"/127.0.0.1","logEndOffset":5,"partition":1,"topic":"orders"}],"state":"Stable"}]

                """)
            let all = try await runSamsaTool(["groups", "describe", "--bootstrap", broker.bootstrap, "--all-groups"])
            #expect(all.status == 0 && all.stdout.contains("idle   orders") && all.stdout.contains(member))
        }
    }

    @Test("delete and delete-offsets: Kafka's errors for a group with members and an unknown group; the effect read back")
    func deleting() async throws {
        try await ClientTestBroker.with { broker, client in
            try await ClientGroupsTests.topic("orders", partitions: 2, records: 1, client)
            try await client.commitOffsets(group: "idle", [Self.p0: 1, Self.p1: 1])
            _ = try await ClientGroupsTests.liveMember("live", topic: "orders", assigned: [0, 1], client)
            let offsets = try await runSamsaTool(["groups", "delete-offsets", "--bootstrap", broker.bootstrap, "--group", "idle", "--topic", "orders:1"])
            #expect(offsets.status == 0 && offsets.stdout == "TOPIC   PARTITION  STATUS\norders  1          Successful\n", "\(offsets.stderr)")
            #expect(try await client.committedOffsets(group: "idle") == [Self.p0: 1])
            let subscribed = try await runSamsaTool(["groups", "delete-offsets", "--bootstrap", broker.bootstrap, "--group", "live", "--topic", "orders"])
            #expect(subscribed.status == 1 && subscribed.stdout.contains("GROUP_SUBSCRIBED_TO_TOPIC"))

            let deleted = try await runSamsaTool(["groups", "delete", "--bootstrap", broker.bootstrap, "--group", "idle", "--group", "live", "--group", "nobody"])
            #expect(deleted.status == 1)
            #expect(deleted.stdout == "Deletion of requested consumer groups ('idle') was successful.\n")
            #expect(deleted.stderr.contains("'live': NON_EMPTY_GROUP") && deleted.stderr.contains("'nobody': GROUP_ID_NOT_FOUND"), "\(deleted.stderr)")
            #expect(try await client.committedOffsets(group: "idle").isEmpty)
            #expect(try await client.listGroups().map(\.groupId) == ["live"])
            let json = try await runSamsaTool(["groups", "delete", "--bootstrap", broker.bootstrap, "--group", "live", "--json"])
            #expect(json.status == 1 && json.stdout == #"[{"error":"NON_EMPTY_GROUP","group":"live"}]"# + "\n")
        }
    }

    @Test("reset-offsets: each spec plans within the log's bounds; --dry-run changes nothing, --execute commits")
    func resetOffsets() async throws {
        try await ClientTestBroker.with { broker, client in
            try await ClientGroupsTests.topic("orders", partitions: 2, records: 5, client)
            try await client.commitOffsets(group: "g", [Self.p0: 2, Self.p1: 4])
            func plan(_ arguments: [String]) async throws -> String {
                let result = try await runSamsaTool(["groups", "reset-offsets", "--bootstrap", broker.bootstrap, "--group", "g"] + arguments)
                #expect(result.status == 0, "\(arguments): \(result.stderr)")
                return result.stdout
            }
            #expect(try await plan(["--all-topics", "--to-earliest"]) == "GROUP  TOPIC   PARTITION  NEW-OFFSET\ng      orders  0          0\ng      orders  1          0\n")
            #expect(try await plan(["--topic", "orders", "--to-latest", "--json"])
                == #"[{"group":"g","newOffset":5,"partition":0,"topic":"orders"},{"group":"g","newOffset":5,"partition":1,"topic":"orders"}]"# + "\n")
            #expect(try await plan(["--topic", "orders:1", "--to-offset", "99", "--dry-run"]).hasSuffix("orders  1          5\n"))
            #expect(try await plan(["--all-topics", "--shift-by=-3"]).hasSuffix("orders  0          0\ng      orders  1          1\n"))
            // Every record was written just now: a time in the past finds the first, one in the future none (the end).
            #expect(try await plan(["--topic", "orders:0", "--to-datetime", "2000-01-01T00:00:00.000Z"]).hasSuffix("orders  0          0\n"))
            #expect(try await plan(["--topic", "orders:0", "--to-datetime", "2999-01-01T00:00:00Z"]).hasSuffix("orders  0          5\n"))
            #expect(try await client.committedOffsets(group: "g") == [Self.p0: 2, Self.p1: 4])
            _ = try await plan(["--all-topics", "--shift-by", "1", "--execute"])
            #expect(try await client.committedOffsets(group: "g") == [Self.p0: 3, Self.p1: 5])

            let twoSpecs = try await runSamsaTool(["groups", "reset-offsets", "--bootstrap", broker.bootstrap, "--group", "g", "--all-topics", "--to-earliest", "--to-latest"])
            #expect(twoSpecs.status != 0 && twoSpecs.stderr.contains("exactly one of"))
            let noShift = try await runSamsaTool(["groups", "reset-offsets", "--bootstrap", broker.bootstrap, "--group", "new", "--topic", "orders", "--shift-by", "1"])
            #expect(noShift.status == 1 && noShift.stderr.contains("no current committed offset"))

            _ = try await ClientGroupsTests.liveMember("live", topic: "orders", assigned: [0, 1], client)
            let active = try await runSamsaTool(["groups", "reset-offsets", "--bootstrap", broker.bootstrap, "--group", "live", "--all-topics", "--to-earliest", "--execute"])
            #expect(active.status == 1)
            #expect(active.stderr.contains("Assignments can only be reset if the group 'live' is inactive, but the current state is Stable."), "\(active.stderr)")
        }
    }
}
