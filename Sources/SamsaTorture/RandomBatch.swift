public import SamsaRecords

/// The contents of one generated batch: what the model remembers and the checks compare, byte for byte.
public struct BatchContents: Sendable, Hashable {
    public var keys: [[UInt8]?]
    public var values: [[UInt8]]
    public var timestamps: [Int64]
    public var count: Int { values.count }
}

/// Random batches: 1 to 20 records, values of 0 to 2,000 bytes (mostly small, some compressible),
/// optional keys, compressed with none, lz4 or zstd.
public enum RandomBatch {
    public static func make(_ random: inout TortureRandom, timestamp: Int64, maxRecords: Int = 20) throws -> (RecordBatch, BatchContents) {
        let count = random.within(1...maxRecords)
        var contents = BatchContents(keys: [], values: [], timestamps: [])
        var builder = RecordBatchBuilder(compression: CompressionCodec.supported[random.below(CompressionCodec.supported.count)])
        for index in 0..<count {
            let size = random.chance(10) ? random.within(0...2000) : random.within(0...120)
            var value: [UInt8]
            if random.chance(50) {
                // Repetitive bytes: the codecs actually compress these.
                let fill = UInt8(truncatingIfNeeded: random.next())
                value = [UInt8](repeating: fill, count: size)
            } else {
                value = (0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
            let key: [UInt8]? = random.chance(30) ? nil : Array("key-\(random.below(1000))".utf8)
            let time = timestamp + Int64(index)
            builder.append(timestamp: time, key: key, value: value)
            contents.keys.append(key)
            contents.values.append(value)
            contents.timestamps.append(time)
        }
        return (try builder.build(), contents)
    }
}
