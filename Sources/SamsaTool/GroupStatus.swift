import Samsa
import SamsaClient
import SamsaStorage

/// What `samsa groups describe` shows of a group: its state and, per partition it committed or is
/// assigned, the committed (current) offset, the log end offset, the lag and the member holding it.
struct GroupStatusJSON: Encodable {
    struct Partition: Encodable {
        var topic: String
        var partition: Int32
        var currentOffset: Int64?
        var logEndOffset: Int64?
        var lag: Int64?
        var consumerId: String?
        var host: String?
        var clientId: String?
    }

    var group: String
    var state: String
    var members: Int
    var partitions: [Partition]

    static func read(_ description: GroupDescription, client: KafkaClient) async throws -> GroupStatusJSON {
        let committed = try await client.committedOffsets(group: description.groupId)
        var holders: [TopicPartitionID: GroupDescription.Member] = [:]
        for member in description.members {
            for id in member.assignment ?? [] { holders[id] = member }
        }
        let partitions = Set(committed.keys).union(holders.keys).sorted()
        var rows: [Partition] = []
        for id in partitions {
            // A partition deleted since it was committed has no end: shown without one.
            let end = try? await client.listOffset(topic: id.topic, partition: id.partition, .latest)
            let current = committed[id]
            let member = holders[id]
            rows.append(
                Partition(
                    topic: id.topic, partition: id.partition, currentOffset: current, logEndOffset: end,
                    lag: current.flatMap { current in end.map { max(0, $0 - current) } }, consumerId: member?.memberId,
                    host: member.map { $0.clientHost.isEmpty ? "-" : $0.clientHost }, clientId: member?.clientId))
        }
        return GroupStatusJSON(group: description.groupId, state: description.state, members: description.members.count, partitions: rows)
    }

    /// A group as a data directory holds it: its committed offsets (no members: nothing runs there).
    static func read(group: String, in samsa: Samsa) throws -> GroupStatusJSON {
        let committed = try samsa.committedOffsets(group: group)
        let rows = committed.keys.sorted().map { id -> Partition in
            // A partition deleted since it was committed has no end: shown without one.
            let end = (try? samsa.describeTopic(id.topic))?.partitions.first { $0.partition == Int(id.partition) }?.logEndOffset
            let current = committed[id]
            return Partition(
                topic: id.topic, partition: id.partition, currentOffset: current, logEndOffset: end,
                lag: current.flatMap { current in end.map { max(0, $0 - current) } }, consumerId: nil, host: nil, clientId: nil)
        }
        return GroupStatusJSON(group: group, state: "Empty", members: 0, partitions: rows)
    }

    /// Kafka's layout: a note for a group without members, then one row per partition.
    var text: String {
        var lines: [String] = []
        if members == 0 { lines.append("Consumer group '\(group)' has no active members.\n") }
        let header = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]
        lines.append(
            table(
                [header]
                    + partitions.map { row in
                        [
                            group, row.topic, "\(row.partition)", row.currentOffset.map(String.init) ?? "-", row.logEndOffset.map(String.init) ?? "-",
                            row.lag.map(String.init) ?? "-", row.consumerId ?? "-", row.host ?? "-", row.clientId ?? "-",
                        ]
                    }))
        return lines.joined(separator: "\n")
    }
}
