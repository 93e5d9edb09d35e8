import ArgumentParser
import SamsaClient

extension Topics {
    /// `samsa topics add-partitions --bootstrap B --topic T --partitions N` (kafka-topics.sh's `--alter --partitions`).
    struct AddPartitions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-partitions", abstract: "Grow a topic on a broker to N partitions (never fewer); existing partitions are untouched.")

        @OptionGroup var remote: TopicsBootstrapOptions
        @Option(help: "Topic name.")
        var topic: String
        @Option(help: "The new partition count (larger than today's).")
        var partitions: Int32
        @Flag(help: "Only check the change; change nothing.")
        var validateOnly = false
        @Flag(help: "Print the result as one JSON object.")
        var json = false

        func validate() throws {
            guard remote.bootstrap != nil else { throw ValidationError("samsa topics add-partitions needs --bootstrap") }
            guard partitions > 0 else { throw ValidationError("--partitions must be positive") }
        }

        func run() async throws {
            try await withBroker(remote.bootstrap!, command: "add-partitions") { client in
                try await client.createPartitions(topic: topic, count: partitions, validateOnly: validateOnly)
                if json {
                    print(JSONLine([("topic", .string(topic)), ("partitions", .int(Int64(partitions))), ("validate_only", .bool(validateOnly))]).rendered)
                } else {
                    print(validateOnly ? "topic \(topic) can grow to \(partitions) partitions (nothing changed)" : "topic \(topic) now has \(partitions) partitions")
                }
            }
        }
    }
}
