/// Kafka's default partitioner hash (`Utils.murmur2`), so keyed records land on the partitions Java and
/// librdkafka's `murmur2_random` partitioner pick.
enum Murmur2 {
    static func hash(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        let seed: UInt32 = 0x9747_b28c
        let m: UInt32 = 0x5bd1_e995
        let length = bytes.count
        var h = seed ^ UInt32(truncatingIfNeeded: length)
        var index = 0
        while index + 4 <= length {
            var k = UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24
            k = k &* m
            k ^= k >> 24
            k = k &* m
            h = h &* m
            h ^= k
            index += 4
        }
        let rest = length & 3
        if rest == 3 { h ^= UInt32(bytes[index + 2]) << 16 }
        if rest >= 2 { h ^= UInt32(bytes[index + 1]) << 8 }
        if rest >= 1 {
            h ^= UInt32(bytes[index])
            h = h &* m
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    /// The partition of a keyed record (`toPositive(murmur2(key)) % partitions`).
    static func partition(key: UnsafeRawBufferPointer, partitions: Int32) -> Int32 {
        (hash(key) & 0x7fff_ffff) % partitions
    }
}
