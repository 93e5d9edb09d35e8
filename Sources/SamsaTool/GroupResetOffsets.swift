import ArgumentParser
import Foundation
import SamsaClient

extension Groups {
    /// `reset-offsets`, as kafka-consumer-groups.sh --reset-offsets: plans new committed offsets for a
    /// group without members and, with --execute, commits them (the default, --dry-run, only prints
    /// the plan). Offsets past either end of a partition are moved to that end, as Kafka's tool does.
    struct ResetOffsets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-offsets", abstract: "Reset a group's committed offsets (the group must have no active members).")

        @OptionGroup var options: GroupsOptions
        @Option(help: "The group.")
        var group: String
        @Option(help: "TOPIC or TOPIC:P,P,...; repeatable.")
        var topic: [TopicPartitionsArgument] = []
        @Flag(help: "Every topic the group has committed offsets for.")
        var allTopics = false
        @Flag(help: "To each partition's log start offset.")
        var toEarliest = false
        @Flag(help: "To each partition's log end offset.")
        var toLatest = false
        @Option(help: "To this offset.")
        var toOffset: Int64?
        @Option(help: "By this many records from the committed offset (negative: back).")
        var shiftBy: Int64?
        @Option(help: "To the first record at or after this ISO-8601 time (2024-05-01T12:00:00.000, Z or +hh:mm; local time without a zone).")
        var toDatetime: ISO8601Argument?
        @Flag(help: "Only print the plan (the default).")
        var dryRun = false
        @Flag(help: "Commit the plan.")
        var execute = false

        func validate() throws {
            guard topic.isEmpty == allTopics else { throw ValidationError("give --topic T[:P,...] (repeatable) or --all-topics") }
            let specs = [toEarliest, toLatest, toOffset != nil, shiftBy != nil, toDatetime != nil].filter { $0 }.count
            guard specs == 1 else { throw ValidationError("give exactly one of --to-earliest, --to-latest, --to-offset, --shift-by, --to-datetime") }
            guard !(dryRun && execute) else { throw ValidationError("give --dry-run or --execute, not both") }
        }

        func run() async throws {
            try await options.withClient(command: "reset-offsets") { client in
                // Kafka's tool refuses a group with members: their next commit would undo the reset.
                let state = try await client.describeGroups([group]).first?.state ?? "Dead"
                guard state == "Empty" || state == "Dead" else {
                    throw GroupsCommandError(
                        message: "Assignments can only be reset if the group '\(group)' is inactive, but the current state is \(state).")
                }
                let committed = try await client.committedOffsets(group: group)
                let partitions = allTopics ? committed.keys.sorted() : try await resolve(topic, client: client)
                var plan: [TopicPartitionID: Int64] = [:]
                for id in partitions { plan[id] = try await target(id, committed: committed[id], client: client) }
                if execute { try await client.commitOffsets(group: group, plan) }
                let rows = plan.sorted { $0.key < $1.key }.map { PlannedOffsetJSON(group: group, topic: $0.key.topic, partition: $0.key.partition, newOffset: $0.value) }
                if options.json { return try printJSON(rows) }
                print(table([["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]] + rows.map { [$0.group, $0.topic, "\($0.partition)", "\($0.newOffset)"] }))
            }
        }

        /// The new offset of one partition, within [log start, log end].
        private func target(_ id: TopicPartitionID, committed: Int64?, client: KafkaClient) async throws -> Int64 {
            let earliest = try await client.listOffset(topic: id.topic, partition: id.partition, .earliest)
            let latest = try await client.listOffset(topic: id.topic, partition: id.partition, .latest)
            let wanted: Int64
            if toEarliest {
                wanted = earliest
            } else if toLatest {
                wanted = latest
            } else if let toOffset {
                wanted = toOffset
            } else if let shiftBy {
                guard let committed else {
                    throw GroupsCommandError(message: "Cannot shift offset for partition \(id) since there is no current committed offset")
                }
                let (sum, overflow) = committed.addingReportingOverflow(shiftBy)
                wanted = overflow ? (shiftBy < 0 ? .min : .max) : sum
            } else {
                // No record at or after the time: the log end, as Kafka's tool does.
                let found = try await client.listOffset(topic: id.topic, partition: id.partition, .timestamp(toDatetime!.milliseconds))
                wanted = found < 0 ? latest : found
            }
            return min(max(wanted, earliest), latest)
        }
    }
}

struct PlannedOffsetJSON: Encodable {
    var group: String
    var topic: String
    var partition: Int32
    var newOffset: Int64
}

/// `--to-datetime`: ISO-8601 with optional fractional seconds and zone (local time without one).
struct ISO8601Argument: ExpressibleByArgument {
    let milliseconds: Int64

    init?(argument: String) {
        let zoned = ISO8601DateFormatter()
        zoned.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let whole = ISO8601DateFormatter()
        whole.formatOptions = [.withInternetDateTime]
        var date = zoned.date(from: argument) ?? whole.date(from: argument)
        if date == nil {
            let local = DateFormatter()
            local.locale = Locale(identifier: "en_US_POSIX")
            local.timeZone = TimeZone.current
            for format in ["yyyy-MM-dd'T'HH:mm:ss.SSS", "yyyy-MM-dd'T'HH:mm:ss"] where date == nil {
                local.dateFormat = format
                date = local.date(from: argument)
            }
        }
        guard let date else { return nil }
        milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
    }
}
