import SamsaRecords

/// The codec a topic's batches are stored in: Kafka's `compression.type` (topic config, and the broker
/// config of the same name that topics fall back to, Kafka's `BrokerCompressionType`). `producer`
/// stores each batch as its producer wrote it; a codec makes the leader recompress a produced batch in
/// any other codec before appending it (`BatchRecompression`, as Kafka's `LogValidator` does).
///
/// Kafka also accepts `gzip` and `snappy`; Samsa's record layer writes only none, lz4 and zstd, so
/// those are refused as a setting (INVALID_CONFIG) rather than accepted and not honoured.
public enum BrokerCompressionType: String, Sendable, CaseIterable {
    case producer
    case uncompressed
    case lz4
    case zstd

    /// Kafka's default, at the broker and for topics.
    public static let kafkaDefault = BrokerCompressionType.producer

    /// The config's value as Kafka spells it (case-sensitive, as Kafka's `ValidString.in`).
    public init?(configValue: String) { self.init(rawValue: configValue) }

    public var configValue: String { rawValue }

    /// The codec every stored batch has; nil for `producer` (each keeps its own).
    var codec: CompressionCodec? {
        switch self {
        case .producer: nil
        case .uncompressed: CompressionCodec.none
        case .lz4: .lz4
        case .zstd: .zstd
        }
    }

    /// Whether a batch written in `produced` must be recompressed before it is stored.
    func recompresses(_ produced: CompressionCodec) -> Bool {
        guard let codec else { return false }
        return codec != produced
    }

    /// Why `value` is not a valid `compression.type` here, or nil. gzip and snappy are Kafka values
    /// Samsa cannot write: refused with that reason, not as unknown.
    static func problem(_ value: String) -> String? {
        if BrokerCompressionType(configValue: value) != nil { return nil }
        if value == "gzip" || value == "snappy" {
            return "Samsa cannot store \(value) batches (its record layer writes only uncompressed, lz4 and zstd): "
                + "use producer, uncompressed, lz4 or zstd"
        }
        return "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"
    }
}
