import ArgumentParser
import SamsaClient

/// `samsa reassign --bootstrap B --topic T --partition P --replicas 1,2,3` (kafka-reassign-partitions.sh's
/// `--execute` for one partition), `--cancel` to revert an ongoing move, `--list` for the ongoing ones.
struct Reassign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move a partition's replicas to other brokers (new replicas catch up, then the old ones are deleted), cancel a move, or list moves.")

    @OptionGroup var remote: TopicsBootstrapOptions
    @Option(help: "Topic name.")
    var topic: String?
    @Option(help: "Partition index.")
    var partition: Int32?
    @Option(help: "The target broker ids, comma-separated; the first is the preferred leader.")
    var replicas: String?
    @Flag(help: "Cancel the partition's ongoing move (back to the replicas it started from).")
    var cancel = false
    @Flag(help: "List the ongoing moves (of --topic, if given).")
    var list = false
    @Flag(help: "Print the result as one JSON object.")
    var json = false

    func validate() throws {
        guard remote.bootstrap != nil else { throw ValidationError("samsa reassign needs --bootstrap") }
        guard [replicas != nil, cancel, list].filter({ $0 }).count == 1 else { throw ValidationError("give exactly one of --replicas, --cancel and --list") }
        if !list { guard topic != nil, partition != nil else { throw ValidationError("--replicas and --cancel need --topic and --partition") } }
        if let replicas, Self.brokerIds(replicas) == nil { throw ValidationError("--replicas expects broker ids, e.g. 1,2,3") }
    }

    static func brokerIds(_ text: String) -> [Int32]? {
        let ids = text.split(separator: ",", omittingEmptySubsequences: false).map { Int32($0.trimmingCharacters(in: .whitespaces)) }
        return ids.contains(nil) || ids.isEmpty ? nil : ids.compactMap { $0 }
    }

    func run() async throws {
        try await withBroker(remote.bootstrap!, command: "reassign") { client in
            if list {
                let ongoing = try await client.listPartitionReassignments().filter { topic == nil || $0.topic == topic }
                if json {
                    print(JSONLine([("reassignments", .array(ongoing.map { entry in
                        .object([
                            ("topic", .string(entry.topic)), ("partition", .int(Int64(entry.partition))), ("replicas", Self.ids(entry.replicas)),
                            ("adding", Self.ids(entry.adding)), ("removing", Self.ids(entry.removing)),
                        ])
                    }))]).rendered)
                    return
                }
                if ongoing.isEmpty { print("no reassignments in progress") }
                for entry in ongoing {
                    print("\(entry.topic)-\(entry.partition): replicas \(Self.listed(entry.replicas)), adding \(Self.listed(entry.adding)), removing \(Self.listed(entry.removing))")
                }
                return
            }
            let target = replicas.flatMap(Self.brokerIds)
            try await client.alterPartitionReassignment(topic: topic!, partition: partition!, replicas: target)
            if json {
                print(JSONLine([
                    ("topic", .string(topic!)), ("partition", .int(Int64(partition!))), ("cancelled", .bool(cancel)),
                    ("replicas", target.map(Self.ids) ?? .null),
                ]).rendered)
            } else if let target {
                print("reassigning \(topic!)-\(partition!) to \(Self.listed(target))")
            } else {
                print("cancelled the reassignment of \(topic!)-\(partition!)")
            }
        }
    }

    private static func ids(_ ids: [Int32]) -> JSONLine.Value { .array(ids.map { .int(Int64($0)) }) }
    private static func listed(_ ids: [Int32]) -> String { ids.isEmpty ? "-" : ids.map(String.init).joined(separator: ",") }
}
