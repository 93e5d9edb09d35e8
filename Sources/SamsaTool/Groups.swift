import ArgumentParser
import Foundation
import Samsa
import SamsaClient
import SamsaProtocol

/// `samsa groups list|describe|delete|delete-offsets|reset-offsets --bootstrap HOST:PORT`: Kafka's
/// kafka-consumer-groups.sh for a Kafka-protocol broker.
struct Groups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, describe and delete consumer groups of a Kafka-protocol broker, and reset or delete their offsets.",
        subcommands: [List.self, Describe.self, Delete.self, DeleteOffsets.self, ResetOffsets.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the groups, one per line (id, state, protocol type).")

        @OptionGroup var options: GroupsOptions

        func run() async throws {
            if let dir = options.dir {
                let samsa = try openForReading(dir)
                defer { try? samsa.close() }
                let groups = try samsa.groupIds()
                if options.json { return try printJSON(groups.map { GroupListingJSON(group: $0, state: "Empty", protocolType: "consumer") }) }
                for group in groups { print("\(group) Empty consumer") }
                return
            }
            try await options.withClient(command: "list") { client in
                let groups = try await client.listGroups()
                if options.json { return try printJSON(groups.map { GroupListingJSON(group: $0.groupId, state: $0.state, protocolType: $0.protocolType) }) }
                for group in groups { print("\(group.groupId) \(group.state) \(group.protocolType.isEmpty ? "-" : group.protocolType)") }
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each partition a group committed or is assigned: current offset, log end offset, lag, and its member.")

        @OptionGroup var options: GroupsOptions
        @Option(help: "A group to describe; repeatable.")
        var group: [String] = []
        @Flag(help: "Describe every group.")
        var allGroups = false

        func validate() throws {
            guard group.isEmpty == allGroups else { throw ValidationError("give --group G (repeatable) or --all-groups") }
        }

        func run() async throws {
            if let dir = options.dir {
                let samsa = try openForReading(dir)
                defer { try? samsa.close() }
                let ids = allGroups ? try samsa.groupIds() : group
                let described = try ids.map { try GroupStatusJSON.read(group: $0, in: samsa) }
                if options.json { return try printJSON(described) }
                for (index, status) in described.enumerated() {
                    if index > 0 { print("") }
                    print(status.text)
                }
                return
            }
            try await options.withClient(command: "describe") { client in
                let ids = allGroups ? try await client.listGroups().map(\.groupId) : group
                var described: [GroupStatusJSON] = []
                for description in try await client.describeGroups(ids) {
                    described.append(try await GroupStatusJSON.read(description, client: client))
                }
                if options.json { return try printJSON(described) }
                for (index, status) in described.enumerated() {
                    if index > 0 { print("") }
                    print(status.text)
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete groups that have no members, with their committed offsets.")

        @OptionGroup var options: GroupsOptions
        @Option(help: "A group to delete; repeatable.")
        var group: [String]

        func run() async throws {
            try await options.withClient(command: "delete") { client in
                let codes = try await client.deleteGroups(group)
                let results = group.map { GroupResultJSON(group: $0, error: codes[$0].map { $0 == .none ? nil : $0.name } ?? "no answer") }
                if options.json {
                    try printJSON(results)
                } else {
                    for result in results {
                        if let error = result.error {
                            standardError("samsa groups delete: group '\(result.group)': \(error)")
                        } else {
                            print("Deletion of requested consumer groups ('\(result.group)') was successful.")
                        }
                    }
                }
                if results.contains(where: { $0.error != nil }) { throw ExitCode(1) }
            }
        }
    }

    struct DeleteOffsets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete-offsets", abstract: "Delete a group's committed offsets of topics (refused for topics its members consume).")

        @OptionGroup var options: GroupsOptions
        @Option(help: "The group.")
        var group: String
        @Option(help: "TOPIC or TOPIC:P,P,...; repeatable.")
        var topic: [TopicPartitionsArgument]

        func run() async throws {
            try await options.withClient(command: "delete-offsets") { client in
                let partitions = try await resolve(topic, client: client)
                let codes = try await client.deleteOffsets(group: group, partitions: partitions)
                let results = partitions.map { id in
                    PartitionResultJSON(topic: id.topic, partition: id.partition, error: codes[id].map { $0 == .none ? nil : $0.name } ?? "no answer")
                }
                if options.json {
                    try printJSON(results)
                } else {
                    print(table([["TOPIC", "PARTITION", "STATUS"]] + results.map { [$0.topic, "\($0.partition)", $0.error ?? "Successful"] }))
                }
                if results.contains(where: { $0.error != nil }) { throw ExitCode(1) }
            }
        }
    }
}

/// `--bootstrap` and `--json`, shared by the groups subcommands.
struct GroupsOptions: ParsableArguments {
    @Option(help: "HOST:PORT[,HOST:PORT...] of a Kafka-protocol broker.")
    var bootstrap: String?
    @Option(help: "Instead of a broker: a data directory (the embedded queue's, or a stopped or running broker's), whose groups' committed offsets list and describe read.")
    var dir: String?
    @Flag(help: "Print JSON instead of text.")
    var json = false

    func validate() throws {
        guard (bootstrap == nil) != (dir == nil) else { throw ValidationError("give --bootstrap HOST:PORT or --dir DIR") }
        if let bootstrap, BrokerAddress.list(bootstrap) == nil { throw ValidationError("--bootstrap expects HOST:PORT[,HOST:PORT...]") }
    }

    /// Runs `body` with a client of the broker, closing it however `body` ends; a broker's error is one
    /// line on stderr and exit status 1.
    func withClient(command: String, _ body: (KafkaClient) async throws -> Void) async throws {
        guard let bootstrap else { throw ValidationError("samsa groups \(command) changes a group: it needs --bootstrap (a broker), not --dir") }
        let client: KafkaClient
        do {
            client = try await KafkaClient.connect(bootstrap: bootstrap, configuration: ClientConfiguration(clientId: "samsa-groups", retries: 3))
        } catch {
            standardError("samsa groups \(command): \(error)")
            throw ExitCode(1)
        }
        do {
            try await body(client)
        } catch let error as KafkaClientError {
            await client.close()
            standardError("samsa groups \(command): \(error)")
            throw ExitCode(1)
        } catch let error as GroupsCommandError {
            await client.close()
            standardError("samsa groups \(command): \(error.message)")
            throw ExitCode(1)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }
}

/// A refusal of the groups command itself (not the broker's), printed as Kafka's tool words it.
struct GroupsCommandError: Error {
    let message: String
}

/// `--topic TOPIC` (every partition) or `--topic TOPIC:P,P,...`.
struct TopicPartitionsArgument: ExpressibleByArgument {
    let topic: String
    let partitions: [Int32]?

    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":") else {
            guard !argument.isEmpty else { return nil }
            (topic, partitions) = (argument, nil)
            return
        }
        let numbers = argument[argument.index(after: colon)...].split(separator: ",", omittingEmptySubsequences: false).map { Int32($0) }
        guard colon != argument.startIndex, !numbers.isEmpty, numbers.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
        (topic, partitions) = (String(argument[..<colon]), numbers.map { $0! })
    }
}

/// The partitions named: a topic without partitions stands for all of its partitions (from metadata).
func resolve(_ topics: [TopicPartitionsArgument], client: KafkaClient) async throws -> [TopicPartitionID] {
    var resolved: [TopicPartitionID] = []
    for argument in topics {
        var partitions = argument.partitions ?? []
        if argument.partitions == nil { partitions = try await client.topicMetadata(argument.topic).partitions.map(\.partition).sorted() }
        resolved += partitions.map { TopicPartitionID(topic: argument.topic, partition: $0) }
    }
    return Array(Set(resolved)).sorted()
}

/// Columns padded to their widest cell, two spaces apart (as Kafka's tools print tables).
func table(_ rows: [[String]]) -> String {
    let widths = rows.reduce(into: [Int]()) { widths, row in
        for (index, cell) in row.enumerated() {
            if index == widths.count { widths.append(0) }
            widths[index] = max(widths[index], cell.count)
        }
    }
    return rows.map { row in
        row.enumerated().map { index, cell in index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }.joined(separator: "\n")
}

func printJSON<Value: Encodable>(_ value: Value) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

struct GroupListingJSON: Encodable {
    var group: String
    var state: String
    var protocolType: String
}

struct GroupResultJSON: Encodable {
    var group: String
    /// Kafka's error name; nil when it worked.
    var error: String?
}

struct PartitionResultJSON: Encodable {
    var topic: String
    var partition: Int32
    var error: String?
}
