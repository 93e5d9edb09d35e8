import NIOCore
import SamsaRecords

/// A record as a test writes it, comparable with what the decoder returns.
struct TestRecord: Hashable, Sendable, CustomStringConvertible {
    var timestamp: Int64
    var key: [UInt8]?
    var value: [UInt8]?
    var headers: [TestHeader] = []

    var description: String { "TestRecord(ts: \(timestamp), key: \(key?.count ?? -1) B, value: \(value?.count ?? -1) B, headers: \(headers.count))" }

    init(timestamp: Int64, key: [UInt8]?, value: [UInt8]?, headers: [TestHeader] = []) {
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }

    init(_ record: Record) {
        timestamp = record.timestamp
        key = record.keyBytes
        value = record.valueBytes
        headers = record.headers.map { TestHeader(key: $0.key, value: $0.value.map { Array($0.readableBytesView) }) }
    }
}

struct TestHeader: Hashable, Sendable {
    var key: String
    var value: [UInt8]?
}

/// Builds one batch from test records; `configure` sets producer fields before the records go in.
func makeBatch(
    _ records: [TestRecord], compression: CompressionCodec = .none, baseOffset: Int64 = 0,
    configure: (inout RecordBatchBuilder) -> Void = { _ in }
) throws -> RecordBatch {
    var builder = RecordBatchBuilder(compression: compression)
    configure(&builder)
    for record in records {
        builder.append(
            timestamp: record.timestamp, key: record.key, value: record.value,
            headers: record.headers.map { RecordHeader(key: $0.key, value: $0.value) })
    }
    var batch = try builder.build()
    batch.setBaseOffset(baseOffset)
    return batch
}

/// A varied record set: keys, null keys and values, empty bytes, headers, large values, timestamps
/// going backwards.
func sampleRecords(count: Int = 50) -> [TestRecord] {
    (0..<count).map { i -> TestRecord in
        let timestamp: Int64 = 1_700_000_000_000 + Int64(i) * 17 - (i == 3 ? 10_000 : 0)
        let key: [UInt8]? = i % 6 == 2 ? nil : Array("key-\(i % 9)".utf8)
        let text = String(repeating: "lorem ipsum ", count: i % 30)
        let value: [UInt8]? = i % 10 == 9 ? nil : Array("{\"n\":\(i),\"text\":\"\(text)\"}".utf8)
        let headers: [TestHeader] =
            i % 5 == 0 ? [TestHeader(key: "h\(i)", value: Array("v".utf8)), TestHeader(key: "null", value: nil)] : []
        return TestRecord(timestamp: timestamp, key: key, value: value, headers: headers)
    }
}

extension RecordBatch {
    /// The batch's bytes as an array.
    var bytes: [UInt8] { Array(buffer.readableBytesView) }
}

/// Re-validates mutated bytes as a batch and decodes all its records; returns the first error.
func decodeFully(_ bytes: [UInt8]) -> RecordBatchError? {
    do {
        let batch = try RecordBatch(validating: ByteBuffer(bytes: bytes))
        _ = try batch.decodeRecords()
        return nil
    } catch {
        return error
    }
}

/// Writes a fresh CRC so a test can reach the checks that come after it.
func withFixedChecksum(_ bytes: [UInt8]) -> [UInt8] {
    var bytes = bytes
    let crc = bytes.withUnsafeBytes { raw in
        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[RecordBatchLayout.attributesOffset...]))
    }
    withUnsafeBytes(of: crc.bigEndian) { bytes.replaceSubrange(17..<21, with: $0) }
    return bytes
}
