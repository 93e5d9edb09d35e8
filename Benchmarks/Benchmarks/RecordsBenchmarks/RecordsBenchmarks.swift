import Benchmark
import NIOCore
import SamsaRecords
import SamsaTool

/// Record batches: CRC-32C, encode and decode of 1,000-record batches, and the compression codecs
/// through SamsaRecords next to direct calls of the C libraries on the same bytes (CodecBaselines.swift).
let benchmarks: @Sendable () -> Void = {
    crcBenchmarks()
    batchBenchmarks()
    codecBenchmarks()
}

/// `count` records of realistic JSON events of `size` bytes, keyed like entity ids.
func sampleEvents(count: Int, size: Int) -> [(key: [UInt8], value: [UInt8])] {
    var events = SyntheticEvents()
    return (0..<count).map { _ in (events.nextKey(), events.next(size: size)) }
}

func crcBenchmarks() {
    // 16 separate 64 KiB buffers per run, the buffer size the machine's limits were measured with.
    var events = SyntheticEvents()
    var data: [UInt8] = []
    while data.count < 1 << 20 { data += events.next(size: 1024) }
    let input = data
    for implementation in [CRC32C.Implementation.hardware, .software] {
        Benchmark("CRC-32C \(implementation) 64 KiB buffers", configuration: rateConfiguration(Rate.megabytesPerSecond)) { benchmark in
            input.withUnsafeBytes { raw in
                measureRate(benchmark, Rate.megabytesPerSecond, unitsPerRun: Double(1 << 20) / 1e6) {
                    var crc: UInt32 = 0
                    for chunk in stride(from: 0, to: 1 << 20, by: 64 << 10) {
                        crc ^= CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[chunk..<(chunk + (64 << 10))]), using: implementation)
                    }
                    blackHole(crc)
                }
            }
        }
    }
}

func batchBenchmarks() {
    for size in [100, 1024] {
        let records = sampleEvents(count: 1000, size: size)
        let label = size == 100 ? "100 B" : "1 KiB"
        for codec in CompressionCodec.supported {
            Benchmark("Encode 1000 × \(label) \(codec)", configuration: rateConfiguration(Rate.recordsPerSecond)) { benchmark in
                var builder = RecordBatchBuilder(compression: codec, capacity: 1000 * (size + 32))
                try measureRate(benchmark, Rate.recordsPerSecond, unitsPerRun: 1000) {
                    for (index, record) in records.enumerated() {
                        builder.append(timestamp: 1_764_000_000_000 + Int64(index), key: record.key, value: record.value)
                    }
                    blackHole(try builder.build())
                }
            }

            var builder = RecordBatchBuilder(compression: codec)
            for (index, record) in records.enumerated() {
                builder.append(timestamp: 1_764_000_000_000 + Int64(index), key: record.key, value: record.value)
            }
            let encoded = try! builder.build().buffer
            Benchmark("Decode 1000 × \(label) \(codec)", configuration: rateConfiguration(Rate.recordsPerSecond)) { benchmark in
                try measureRate(benchmark, Rate.recordsPerSecond, unitsPerRun: 1000) {
                    let batch = try RecordBatch(validating: encoded)
                    var iterator = try batch.records()
                    var bytes = 0
                    while let record = try iterator.next() { bytes &+= record.value?.readableBytes ?? 0 }
                    precondition(bytes == 1000 * size)
                }
            }
            Benchmark("Decode 1000 × \(label) \(codec) in place", configuration: rateConfiguration(Rate.recordsPerSecond)) { benchmark in
                try measureRate(benchmark, Rate.recordsPerSecond, unitsPerRun: 1000) {
                    var bytes = 0
                    try RecordBatch(validating: encoded).forEachRecord { record in bytes &+= record.value?.count ?? 0 }
                    precondition(bytes == 1000 * size)
                }
            }
        }
    }
}

func codecBenchmarks() {
    for (label, count) in [("64 KiB", 64), ("1 MiB", 1024)] {
        // The uncompressed records section of a batch of 1 KiB events: what a batch compresses.
        var builder = RecordBatchBuilder()
        for (index, record) in sampleEvents(count: count, size: 1024).enumerated() {
            builder.append(timestamp: Int64(index), key: record.key, value: record.value)
        }
        let batch = try! builder.build()
        let section = Array(batch.storedRecords.readableBytesView)
        let megabytes = Double(section.count) / 1e6

        for codec in [CompressionCodec.lz4, .zstd] {
            let baseline = CodecBaseline(codec: codec, input: section)
            Benchmark("\(codec) compress \(label): Samsa vs C library", configuration: Paired.configuration) { benchmark in
                var output = ByteBuffer()
                try section.withUnsafeBytes { raw in
                    try measurePaired(benchmark, megabytes: megabytes) {
                        output.clear()
                        try RecordCompression.compress(raw, codec: codec, into: &output)
                    } baseline: {
                        blackHole(baseline.compress())
                    }
                }
            }
            let compressed = baseline.compressed
            Benchmark("\(codec) decompress \(label): Samsa vs C library", configuration: Paired.configuration) { benchmark in
                try compressed.withUnsafeBytes { raw in
                    try measurePaired(benchmark, megabytes: megabytes) {
                        blackHole(try RecordCompression.decompress(raw, codec: codec, limit: 64 << 20))
                    } baseline: {
                        blackHole(baseline.decompress())
                    }
                }
            }
        }
    }
}
