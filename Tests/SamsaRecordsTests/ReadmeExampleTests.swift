import SamsaRecords
import Testing

/// The README's Swift example, kept compiling and passing.
@Test("README example")
func readmeExample() throws {
    var builder = RecordBatchBuilder(compression: .lz4)
    builder.append(timestamp: 1_764_000_000_000, key: Array("user-1".utf8), value: Array(#"{"action":"login"}"#.utf8))
    var batch = try builder.build()
    batch.setBaseOffset(42)

    let received = try RecordBatch(validating: batch.buffer)
    var offsets: [Int64] = []
    for record in try received.decodeRecords() {
        offsets.append(record.offset)
        #expect(record.valueBytes == Array(#"{"action":"login"}"#.utf8))
    }
    try received.forEachRecord { view in
        offsets.append(view.offset)
        #expect(view.value?.count == 18)
    }
    #expect(offsets == [42, 42])
}
