import SamsaRecords
import SamsaStorage

/// What a compacted log must show: every record written (by offset, so nothing shown is invented),
/// how far appends were acknowledged (durable for power cuts, written for process crashes), and each
/// key's latest acknowledged record.
///
/// The compaction promises checked (`check`): each key's latest acknowledged value is readable at its
/// offset, or a later record of that key that was written is; a key whose latest acknowledged record
/// is a tombstone shows nothing older (a deleted key never comes back), and its tombstone is gone
/// only once `delete.retention.ms` has passed since it was appended; offsets only go up; reads through
/// the offset index land on the batch holding a key's latest record; the files verify.
struct CompactionModel {
    /// Records the log gave offsets to (or may have written, past the acknowledged end).
    private(set) var written: [Int64: CompactionRecord] = [:]
    /// Every offset below this was acknowledged.
    private(set) var acknowledgedEnd: Int64 = 0
    /// Each key's latest acknowledged offset.
    private(set) var latest: [String: Int64] = [:]
    private(set) var acknowledgedRecords = 0

    mutating func wrote(_ records: [CompactionRecord], at base: Int64) {
        for (index, record) in records.enumerated() { written[base + Int64(index)] = record }
    }

    /// Marks every written offset below `end` acknowledged.
    mutating func acknowledge(through end: Int64) {
        guard end > acknowledgedEnd else { return }
        for offset in acknowledgedEnd..<end {
            guard let record = written[offset] else { continue }
            latest[record.key] = offset
            acknowledgedRecords += 1
        }
        acknowledgedEnd = end
    }

    /// What a crash kept ends at `end`: unacknowledged records past it are gone (their offsets go to
    /// the next appends).
    mutating func truncate(to end: Int64) {
        for offset in written.keys where offset >= end { written.removeValue(forKey: offset) }
    }

    /// Compares `log` (read whole from its start) with the model; returns the records compared.
    ///   - now: the model clock, when tombstone removal times are known (in-process rounds).
    ///   - verifyFiles: false while a log that met injected failures is still open (leftover
    ///     `.cleaned`/`.swap` files go at the next open).
    func check(
        _ log: PartitionLog, _ context: String, now: Int64?, deleteRetention: Int64, random: inout TortureRandom, verifyFiles: Bool = true
    ) throws(TortureViolation) -> Int {
        let end = log.logEndOffset
        try require(end >= acknowledgedEnd, "\(context): LOST acknowledged records: the log ends at \(end), acknowledged up to \(acknowledgedEnd)", lost: Int(acknowledgedEnd - end))
        var shown: [String: Int64] = [:]
        var checked = 0
        do {
            var next = log.logStartOffset
            var previous: Int64 = -1
            while let bytes = try log.read(from: next, maxBytes: 1 << 16) {
                var remaining = bytes
                while remaining.readableBytes > 0 {
                    let batch = try RecordBatch(validating: remaining)
                    remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                    try require(batch.baseOffset >= next || batch.lastOffset < next, "\(context): a batch at \(batch.baseOffset) overlaps the one ending at \(next)")
                    guard batch.lastOffset >= next else { continue }
                    for record in try batch.decodeRecords() {
                        try require(record.offset > previous, "\(context): offset \(record.offset) after \(previous): offsets go back or repeat")
                        try require(record.offset < end, "\(context): offset \(record.offset) at or past the log end \(end)")
                        previous = record.offset
                        let key = record.keyBytes.map { String(decoding: $0, as: UTF8.self) }
                        let value = record.valueBytes.map { String(decoding: $0, as: UTF8.self) }
                        guard let wanted = written[record.offset] else {
                            throw TortureViolation("\(context): offset \(record.offset) holds a record (key \(key ?? "none")) nothing wrote there: invented")
                        }
                        try require(key == wanted.key && value == wanted.value, "\(context): offset \(record.offset) holds key \(key ?? "none") = \(value ?? "null"), \(wanted.key) = \(wanted.value ?? "null") was written")
                        if let key { shown[key] = record.offset }
                        checked += 1
                    }
                    next = batch.nextOffset
                }
            }
            try require(next == end, "\(context): reads end at \(next), the log at \(end)")
            for (key, offset) in latest.sorted(by: { $0.key < $1.key }) {
                let record = written[offset]!
                if let seen = shown[key] {
                    try require(
                        seen >= offset,
                        "\(context): key \(key): latest acknowledged \(record.value == nil ? "tombstone" : "value") at \(offset), but the log's latest is the older offset \(seen) (\(record.value == nil ? "a deleted key came back" : "LOST its latest value"))",
                        lost: record.value == nil ? 0 : 1)
                } else {
                    try require(record.value == nil, "\(context): key \(key): LOST: its latest acknowledged value at \(offset) is gone, with every later record", lost: 1)
                    if let now {
                        try require(
                            now >= record.clock + deleteRetention,
                            "\(context): key \(key): the tombstone at \(offset) (appended at \(record.clock)) is gone at \(now), before delete.retention.ms (\(deleteRetention)) passed")
                    }
                }
            }
            // Reads from a key's latest offset go through the offset index and must find it.
            let live = shown.values.sorted()
            for _ in 0..<min(live.count, 12) {
                let offset = live[random.below(live.count)]
                guard let bytes = try log.read(from: offset, maxBytes: 1) else { throw TortureViolation("\(context): nothing read from offset \(offset)") }
                let batch = try RecordBatch(validating: bytes)
                try require(batch.baseOffset <= offset && offset <= batch.lastOffset, "\(context): a read from \(offset) found the batch \(batch.baseOffset)...\(batch.lastOffset)")
                try require(try batch.decodeRecords().contains { $0.offset == offset }, "\(context): a read from \(offset) found a batch without it")
            }
            if verifyFiles {
                let problems = try LogCheck.verifierProblems(log.directory)
                try require(problems.isEmpty, "\(context): LogVerifier: \(problems.map(\.description).joined(separator: "; "))")
            }
        } catch let violation as TortureViolation {
            throw violation
        } catch {
            throw TortureViolation("\(context): reading the log failed: \(error)", readFailed: true)
        }
        return checked
    }
}
