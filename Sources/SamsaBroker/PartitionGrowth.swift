import SamsaProtocol

/// The replicas of the partitions CreatePartitions adds to a topic, checked as Kafka's
/// `AdminZkClient.addPartitions` checks them (same errors and messages), for either catalog.
enum PartitionGrowth {
    /// The replicas of partitions `existing.count..<count`: `manual` (one list per new partition)
    /// if given, else spread over `brokers` as CreateTopics spreads them, continuing from where
    /// partition 0's first replica stands.
    static func replicas(
        of topic: String, existing: [[BrokerID]], count: Int32, manual: [[BrokerID]]?, brokers: [BrokerID]
    ) throws(CatalogError) -> [[BrokerID]] {
        let old = existing.count
        guard Int(count) > old else {
            let message =
                Int(count) == old
                ? "Topic already has \(old) partitions." : "Topic currently has \(old) partitions, which is higher than the requested \(count)."
            throw CatalogError(code: .invalidPartitions, message: message)
        }
        let added = Int(count) - old
        let factor = existing.first?.count ?? 1
        guard let manual else {
            guard factor <= brokers.count else {
                throw CatalogError(
                    code: .invalidReplicationFactor, message: "Replication factor: \(factor) larger than available brokers: \(brokers.count).")
            }
            let start = existing.first?.first.flatMap { brokers.firstIndex(of: $0) } ?? 0
            return (old..<Int(count)).map { partition in (0..<factor).map { brokers[(partition + start + $0) % brokers.count] } }
        }
        guard manual.count == added else {
            throw invalid("Increasing the number of partitions by \(added) but \(manual.count) assignments provided.")
        }
        let known = Set(brokers)
        for (offset, replicas) in manual.enumerated() {
            let partition = old + offset
            guard !replicas.isEmpty else { throw invalid("Cannot have replication factor of 0 for partition id \(partition).") }
            guard Set(replicas).count == replicas.count else {
                throw invalid("Duplicate brokers not allowed in replica assignment: \(list(replicas)) for partition id \(partition).")
            }
            let unknown = replicas.filter { !known.contains($0) }
            guard unknown.isEmpty else { throw invalid("Unknown broker(s) in replica assignment: \(list(unknown)).") }
        }
        let inconsistent = manual.enumerated().filter { $0.element.count != factor }
        guard inconsistent.isEmpty else {
            throw invalid(
                "Inconsistent replication factor between partitions, partition 0 has \(factor) while partitions [\(inconsistent.map { "\(old + $0.offset)" }.joined(separator: ", "))] have replication factors [\(inconsistent.map { "\($0.element.count)" }.joined(separator: ", "))], respectively."
            )
        }
        return manual
    }

    private static func invalid(_ message: String) -> CatalogError { CatalogError(code: .invalidReplicaAssignment, message: message) }

    private static func list(_ brokers: [BrokerID]) -> String { brokers.map { "\($0)" }.joined(separator: ", ") }
}
