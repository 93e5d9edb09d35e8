/// Kafka's key hash: MurmurHash2 (32-bit, seed 0x9747b28c) as `org.apache.kafka.common.utils.Utils.murmur2`
/// computes it, so a key lands on the same partition number as with Kafka's default partitioner (and
/// librdkafka's `murmur2_random`). Here, below both the embedded producer and the Kafka client, so the
/// two partition keys alike.
public enum Murmur2 {
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        let length = bytes.count
        let m: UInt32 = 0x5bd1_e995
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: length)
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
        let remaining = length - index
        if remaining == 3 { h ^= UInt32(bytes[index + 2]) << 16 }
        if remaining >= 2 { h ^= UInt32(bytes[index + 1]) << 8 }
        if remaining >= 1 {
            h ^= UInt32(bytes[index])
            h = h &* m
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    public static func hash(_ data: some Collection<UInt8>) -> Int32 {
        if let hashed = data.withContiguousStorageIfAvailable({ hash(UnsafeRawBufferPointer($0)) }) { return hashed }
        return Array(data).withUnsafeBytes { hash($0) }
    }

    /// The partition Kafka's default partitioner gives a key: `toPositive(murmur2(key)) % partitions`.
    public static func partition(forKey key: some Collection<UInt8>, partitions: Int) -> Int {
        Int(hash(key) & 0x7fff_ffff) % partitions
    }

    public static func partition(key: UnsafeRawBufferPointer, partitions: Int32) -> Int32 {
        (hash(key) & 0x7fff_ffff) % partitions
    }
}
