import SamsaProtocol

/// How many record bytes a fetch response may carry, partition by partition (KIP-74, as Kafka's
/// `ReplicaManager.readFromLog`): the request's `max_bytes`, capped by the broker's
/// `fetch.max.bytes`, shrinks by what each partition returns; a partition gets at most its
/// `partition_max_bytes` of what is left. Until one partition returned records the first batch comes
/// whole however large (`wholeFirstBatch`), so a reader always makes progress; after that nothing
/// passes the limits. A response's records therefore stay under the budget plus one batch, however
/// many partitions it names.
struct FetchBudget {
    /// The most a budget can be, whatever the request and the configuration say: with one batch
    /// past it and the partitions' fields, a response stays far inside its 32-bit size.
    static let ceiling = 1 << 30

    /// The whole budget.
    let size: Int
    /// Bytes still to hand out.
    private(set) var remaining: Int
    /// True until a partition returned records.
    private(set) var wholeFirstBatch = true

    /// A request's budget: its `max_bytes` (negative counts as 0) under `brokerMaxBytes`.
    init(requestMaxBytes: Int32, brokerMaxBytes: Int) {
        size = max(0, min(Int(requestMaxBytes), brokerMaxBytes, Self.ceiling))
        remaining = size
    }

    /// The most one partition may return now: its own limit (negative counts as 0) within what is left.
    func limit(partitionMaxBytes: Int32) -> Int {
        max(0, min(Int(partitionMaxBytes), remaining))
    }

    /// Whether a read is needed at all: nothing can come once the budget is spent and a batch came.
    var exhausted: Bool { remaining == 0 && !wholeFirstBatch }

    /// Counts what a partition returned.
    mutating func spend(_ bytes: Int) {
        guard bytes > 0 else { return }
        wholeFirstBatch = false
        remaining = max(0, remaining - bytes)
    }

    /// The bytes a fetch with `min_bytes` waits for: never more than the budget could bring
    /// (Kafka's `fetchMinBytes = min(minBytes, fetchMaxBytes)`).
    func bytesToWaitFor(minBytes: Int32) -> Int {
        max(0, min(Int(minBytes), size))
    }
}
