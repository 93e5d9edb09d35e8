import SamsaRecords

/// One keyed record a compaction round wrote: a key from a small key space, and a value (nil: a
/// tombstone), with the model clock when it was appended.
struct CompactionRecord: Sendable, Hashable {
    var key: String
    var value: String?
    var clock: Int64
}

/// Keyed batches for compaction rounds: 1 to 8 records over `keys` keys (few, so most records are
/// superseded and cleaning removes them), 15 % tombstones, values of 0 to 300 bytes (mostly small,
/// some compressible), compressed with none, lz4 or zstd. Deterministic: the parent of a SIGKILL
/// round regenerates exactly what its child appended, written or not, from the same stream.
struct CompactionBatches {
    var random: TortureRandom
    let keys: Int
    private var sequence = 0

    init(random: TortureRandom, keys: Int) {
        self.random = random
        self.keys = max(1, keys)
    }

    /// The key space of a round: the same in every life and step of the round.
    static func keySpace(seed: UInt64, round: Int) -> Int {
        var random = TortureRandom(seed: seed, round: round, stream: 20)
        return [3, 8, 16, 40][random.below(4)]
    }

    mutating func next(clock: Int64) throws -> (RecordBatch, [CompactionRecord]) {
        let count = random.within(1...8)
        var builder = RecordBatchBuilder(compression: CompressionCodec.supported[random.below(CompressionCodec.supported.count)])
        var records: [CompactionRecord] = []
        for _ in 0..<count {
            sequence += 1
            let key = "k\(random.below(keys))"
            var value: String?
            if !random.chance(15) {
                let size = random.chance(10) ? random.within(0...300) : random.within(0...40)
                let fill = Character(Unicode.Scalar(UInt8(97 + random.below(26))))
                value = "v\(sequence)-" + (random.chance(50) ? String(repeating: fill, count: size) : String((0..<size).map { _ in Character(Unicode.Scalar(UInt8(33 + random.below(90)))) }))
            }
            builder.append(timestamp: clock, key: Array(key.utf8), value: value.map { Array($0.utf8) })
            records.append(CompactionRecord(key: key, value: value, clock: clock))
        }
        return (try builder.build(), records)
    }
}
