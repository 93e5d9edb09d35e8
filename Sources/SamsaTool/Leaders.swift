import ArgumentParser
import SamsaClient
import SamsaProtocol

/// `samsa leaders elect --bootstrap B [--topic T [--partition P]] [--type preferred|unclean]`
/// (kafka-leader-election.sh).
struct Leaders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Leader elections on a cluster.", subcommands: [Elect.self])

    struct Elect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move leadership to the preferred replicas (or, unclean, to any live in-sync replica) of a partition, a topic or every partition.")

        @OptionGroup var remote: TopicsBootstrapOptions
        @Option(help: "Topic name (every topic when omitted).")
        var topic: String?
        @Option(help: "Partition index (every partition of --topic when omitted).")
        var partition: Int32?
        @Option(help: "preferred or unclean (unclean never picks a replica outside the ISR here).")
        var type: String = "preferred"
        @Flag(help: "Print the outcomes as one JSON object.")
        var json = false

        func validate() throws {
            guard remote.bootstrap != nil else { throw ValidationError("samsa leaders elect needs --bootstrap") }
            guard ["preferred", "unclean"].contains(type) else { throw ValidationError("--type is preferred or unclean") }
            if partition != nil && topic == nil { throw ValidationError("--partition needs --topic") }
        }

        func run() async throws {
            try await withBroker(remote.bootstrap!, command: "leaders elect") { client in
                var partitions: [String: [Int32]]?
                if let topic {
                    if let partition {
                        partitions = [topic: [partition]]
                    } else {
                        partitions = [topic: try await client.topicMetadata(topic).partitions.map(\.partition)]
                    }
                }
                let outcomes = try await client.electLeaders(unclean: type == "unclean", partitions: partitions)
                if json {
                    print(JSONLine([("elections", .array(outcomes.map { outcome in
                        .object([
                            ("topic", .string(outcome.topic)), ("partition", .int(Int64(outcome.partition))), ("error", .string(outcome.error.name)),
                            ("message", outcome.message.map(JSONLine.Value.string) ?? .null),
                        ])
                    }))]).rendered)
                    return
                }
                if outcomes.isEmpty { print("no partition needed an election") }
                for outcome in outcomes {
                    let result = outcome.error == .none ? "elected" : outcome.error.name
                    print("\(outcome.topic)-\(outcome.partition): \(result)")
                }
            }
        }
    }
}
