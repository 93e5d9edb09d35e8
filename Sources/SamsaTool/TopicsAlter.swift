import ArgumentParser
import SamsaClient

extension Topics {
    /// `samsa topics alter --bootstrap B --topic T --config K=V --delete-config K` (kafka-configs.sh's
    /// `--alter --add-config/--delete-config` for a topic).
    struct Alter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a topic's configs on a broker (Kafka's names, e.g. retention.ms); every broker applies them at once.")

        @OptionGroup var remote: TopicsBootstrapOptions
        @Option(help: "Topic name.")
        var topic: String
        @Option(name: .customLong("config"), help: "Set a topic config KEY=VALUE; repeatable.")
        var set: [TopicConfigArgument] = []
        @Option(name: .customLong("delete-config"), help: "Remove a topic config (back to the broker's value); repeatable.")
        var delete: [String] = []
        @Flag(help: "Only check the change; change nothing.")
        var validateOnly = false
        @Flag(help: "Print the topic's configs afterwards as one JSON object.")
        var json = false

        func validate() throws {
            guard remote.bootstrap != nil else { throw ValidationError("samsa topics alter needs --bootstrap (a data directory has no dynamic configs)") }
            guard !set.isEmpty || !delete.isEmpty else { throw ValidationError("give at least one --config or --delete-config") }
        }

        func run() async throws {
            var values: [String: String] = [:]
            for entry in set { values[entry.key] = entry.value }
            try await withBroker(remote.bootstrap!, command: "alter") { client in
                try await client.alterConfigs(.topic(topic), set: values, delete: delete, validateOnly: validateOnly)
                let configs = try await client.describeConfigs(.topic(topic))
                if json {
                    print(JSONLine([("topic", .string(topic)), ("validate_only", .bool(validateOnly)), ("configs", TopicConfigOutput.json(configs))]).rendered)
                    return
                }
                print(validateOnly ? "the change to topic \(topic) is valid (nothing changed)" : "changed the configs of topic \(topic)")
                let named = Set(values.keys).union(delete)
                for config in configs where named.contains(config.name) { print(TopicConfigOutput.line(config)) }
            }
        }
    }
}

/// How `samsa topics` prints configs.
enum TopicConfigOutput {
    static func line(_ config: ConfigDescription) -> String {
        "  config \(config.name)=\(config.value ?? "null") (\(config.source))"
    }

    static func json(_ configs: [ConfigDescription]) -> JSONLine.Value {
        .array(configs.map { config in
            .object([("name", .string(config.name)), ("value", config.value.map(JSONLine.Value.string) ?? .null), ("source", .string("\(config.source)"))])
        })
    }
}
