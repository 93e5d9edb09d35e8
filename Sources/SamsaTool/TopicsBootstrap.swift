import ArgumentParser
import SamsaClient
import SamsaProtocol

/// `--bootstrap` for `samsa topics`: administer a Kafka-protocol broker instead of a data directory.
struct TopicsBootstrapOptions: ParsableArguments {
    @Option(help: "HOST:PORT[,HOST:PORT...] of a Kafka-protocol broker to administer instead of a data directory.")
    var bootstrap: String?

    func validate() throws {
        if let bootstrap, BrokerAddress.list(bootstrap) == nil { throw ValidationError("--bootstrap expects HOST:PORT[,HOST:PORT...]") }
    }

    /// Exactly one of `--dir` and `--bootstrap`.
    func requireOne(dir: String?) throws {
        guard (dir == nil) != (bootstrap == nil) else { throw ValidationError("give either --dir or --bootstrap") }
    }
}

/// Settings of a topic created on a broker (CreateTopics), beside `--partitions`.
struct RemoteTopicSettings: ParsableArguments {
    @Option(help: "With --bootstrap: replicas per partition (default: the broker's).")
    var replicationFactor: Int16?
    @Option(help: "With --bootstrap: a topic config KEY=VALUE (Kafka's names, e.g. retention.ms=60000); repeatable.")
    var config: [TopicConfigArgument] = []
}

/// `--config KEY=VALUE`.
struct TopicConfigArgument: ExpressibleByArgument {
    let key: String
    let value: String

    init?(argument: String) {
        guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else { return nil }
        key = String(argument[..<equals])
        value = String(argument[argument.index(after: equals)...])
    }
}

/// Runs `body` with a client of the broker, closing it however `body` ends; broker errors become one
/// line on stderr and exit status 1.
func withBroker(_ bootstrap: String, command: String, _ body: (KafkaClient) async throws -> Void) async throws {
    let client: KafkaClient
    do {
        client = try await KafkaClient.connect(bootstrap: bootstrap, configuration: ClientConfiguration(clientId: "samsa-topics", retries: 3))
    } catch {
        standardError("samsa topics \(command): \(error)")
        throw ExitCode(1)
    }
    do {
        try await body(client)
    } catch let error as KafkaClientError {
        await client.close()
        standardError("samsa topics \(command): \(error)")
        throw ExitCode(1)
    } catch {
        await client.close()
        throw error
    }
    await client.close()
}

extension Topics.Create {
    func createRemote(_ bootstrap: String) async throws {
        var configs: [String: String] = [:]
        for entry in remoteSettings.config { configs[entry.key] = entry.value }
        try await withBroker(bootstrap, command: "create") { client in
            try await client.createTopics([
                NewTopic(name: topic, partitions: Int32(partitions), replicationFactor: remoteSettings.replicationFactor ?? -1, configs: configs)
            ])
        }
        print("created topic \(topic) with \(partitions) partition\(partitions == 1 ? "" : "s")")
    }
}

extension Topics.List {
    func listRemote(_ bootstrap: String) async throws {
        try await withBroker(bootstrap, command: "list") { client in
            for topic in try await client.listTopics() where !topic.isInternal { print(topic.name) }
        }
    }
}

extension Topics.Describe {
    func describeRemote(_ bootstrap: String) async throws {
        try await withBroker(bootstrap, command: "describe") { client in
            let topics: [TopicMetadata]
            if let topic {
                let metadata = try await client.refreshMetadata(topics: [topic])
                guard let entry = metadata.topics[topic], entry.error == .none else {
                    throw KafkaClientError.broker(metadata.topics[topic]?.error ?? .unknownTopicOrPartition, "topic \(topic)")
                }
                topics = [entry]
            } else {
                topics = try await client.listTopics().filter { !$0.isInternal }
            }
            for entry in topics {
                // Under-replicated: fewer in-sync replicas than replicas (Kafka's --under-replicated-partitions).
                let shown = entry.partitions.filter { !underReplicatedPartitions || $0.isr.count < $0.replicas.count }
                if underReplicatedPartitions && shown.isEmpty { continue }
                // The effective value of each config and where it comes from (kafka-configs.sh --describe --all).
                let configs = entry.isInternal ? [] : try await client.describeConfigs(.topic(entry.name))
                if json {
                    print(Self.json(entry, shown, configs).rendered)
                    continue
                }
                print("topic \(entry.name): partitions=\(entry.partitions.count)\(entry.isInternal ? " internal" : "")")
                for config in configs { print(TopicConfigOutput.line(config)) }
                for p in shown {
                    var line = "  partition \(p.partition): leader \(p.leader), leader epoch \(p.leaderEpoch), "
                    line += "replicas \(Self.list(p.replicas)), isr \(Self.list(p.isr))"
                    if !p.offlineReplicas.isEmpty { line += ", offline \(Self.list(p.offlineReplicas))" }
                    if p.isr.count < p.replicas.count { line += ", under-replicated" }
                    if p.error != .none { line += ", error \(p.error.name)" }
                    print(line)
                }
            }
        }
    }

    private static func json(_ topic: TopicMetadata, _ partitions: [PartitionMetadata], _ configs: [ConfigDescription]) -> JSONLine {
        JSONLine([
            ("topic", .string(topic.name)), ("internal", .bool(topic.isInternal)),
            ("partitions", .array(partitions.map { p in
                .object([
                    ("partition", .int(Int64(p.partition))), ("leader", .int(Int64(p.leader))), ("leader_epoch", .int(Int64(p.leaderEpoch))),
                    ("replicas", .array(p.replicas.map { .int(Int64($0)) })), ("isr", .array(p.isr.map { .int(Int64($0)) })),
                    ("offline", .array(p.offlineReplicas.map { .int(Int64($0)) })), ("error", .string(p.error.name)),
                ])
            })),
            ("configs", TopicConfigOutput.json(configs)),
        ])
    }

    private static func list(_ nodes: [Int32]) -> String {
        nodes.isEmpty ? "-" : nodes.map(String.init).joined(separator: ",")
    }
}

extension Topics.Delete {
    func deleteRemote(_ bootstrap: String) async throws {
        try await withBroker(bootstrap, command: "delete") { client in try await client.deleteTopics([topic]) }
        print("deleted topic \(topic)")
    }
}
