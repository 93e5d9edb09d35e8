import Foundation
import NIOCore
import SamsaRecords
import Testing
import SamsaTestSupport

/// What a batch holds, in the JSON shape `Tests/Interop/kafka_python_batches.py` writes: bytes as hex,
/// null as null.
struct BatchDescription: Codable, Equatable {
    struct Fields: Codable, Equatable {
        var baseOffset: Int64
        var partitionLeaderEpoch: Int32
        var codec: String
        var producerId: Int64
        var producerEpoch: Int16
        var baseSequence: Int32
        var recordCount: Int32
        var maxTimestamp: Int64
        var baseTimestamp: Int64
    }
    struct Entry: Codable, Equatable {
        var offset: Int64
        var timestamp: Int64
        var key: String?
        var value: String?
        var headers: [[String?]]
    }
    var batch: Fields
    var records: [Entry]

    init(_ batch: RecordBatch) throws {
        self.batch = Fields(
            baseOffset: batch.baseOffset, partitionLeaderEpoch: batch.partitionLeaderEpoch, codec: batch.compression.description,
            producerId: batch.producerId, producerEpoch: batch.producerEpoch, baseSequence: batch.baseSequence,
            recordCount: batch.recordCount, maxTimestamp: batch.maxTimestamp, baseTimestamp: batch.baseTimestamp)
        records = try batch.decodeRecords().map { record in
            Entry(
                offset: record.offset, timestamp: record.timestamp, key: record.key.map(hexString), value: record.value.map(hexString),
                headers: record.headers.map { [$0.key, $0.value.map(hexString)] })
        }
    }
}

func hexString(_ buffer: ByteBuffer) -> String {
    buffer.readableBytesView.map { String(format: "%02x", $0) }.joined()
}

/// Locations and the Python interpreter for the interop script.
enum Interop {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let goldenDirectory = testsDirectory.appendingPathComponent("Golden")
    static let script = testsDirectory.deletingLastPathComponent().appendingPathComponent("Interop/kafka_python_batches.py")
    static let python = ProcessInfo.processInfo.environment["SAMSA_PYTHON"] ?? "python3"

    /// Runs the script; fails the test with the script's stderr if it exits non-zero.
    static func run(_ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script.path] + arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw InteropFailure(
                message: "\(python) \(script.lastPathComponent) \(arguments.joined(separator: " ")) failed "
                    + "(kafka-python, lz4 and zstandard are installed by scripts/test.sh):\n\(errorText)")
        }
        return data
    }

    struct InteropFailure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}

@Suite("Interop with kafka-python", .offCooperativePool)
struct KafkaPythonInteropTests {
    static let codecs = ["none", "lz4", "zstd"]

    func checkGolden(in directory: URL, codec: String) throws {
        let bytes = try Data(contentsOf: directory.appendingPathComponent("kafka-python-\(codec).batch"))
        let expected = try JSONDecoder().decode(
            BatchDescription.self, from: Data(contentsOf: directory.appendingPathComponent("kafka-python-\(codec).json")))
        let batch = try RecordBatch(validating: ByteBuffer(bytes: bytes))
        #expect(batch.sizeInBytes == bytes.count)
        #expect(batch.isChecksumValid)
        let actual = try BatchDescription(batch)
        #expect(actual.batch == expected.batch)
        #expect(actual.records.count == expected.records.count)
        for (a, e) in zip(actual.records, expected.records) { #expect(a == e) }
    }

    @Test("Samsa decodes the committed golden batches kafka-python built", arguments: codecs)
    func committedGolden(codec: String) throws {
        try checkGolden(in: Interop.goldenDirectory, codec: codec)
    }

    @Test("Samsa decodes batches the installed kafka-python builds now", arguments: codecs)
    func liveGolden(codec: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-interop-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try Interop.run(["generate", directory.path])
        try checkGolden(in: directory, codec: codec)
    }

    @Test("kafka-python decodes batches Samsa builds", arguments: CompressionCodec.supported)
    func samsaToKafkaPython(codec: CompressionCodec) throws {
        // Several batches back to back, as in a segment file, with the fields a log stamps.
        var file = ByteBuffer()
        var expected: [BatchDescription] = []
        var offset: Int64 = 77
        for (index, records) in [sampleRecords(count: 60), sampleRecords(count: 1), sampleRecords(count: 25)].enumerated() {
            var batch = try makeBatch(records, compression: codec, baseOffset: offset) { builder in
                builder.producerId = 1000 + Int64(index)
                builder.producerEpoch = 2
                builder.baseSequence = Int32(index * 100)
            }
            batch.setPartitionLeaderEpoch(Int32(index + 3))
            offset = batch.nextOffset
            file.writeImmutableBuffer(batch.buffer)
            expected.append(try BatchDescription(batch))
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-\(codec)-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: path) }
        try Data(file.readableBytesView).write(to: path)
        let decoded = try JSONDecoder().decode([BatchDescription].self, from: Interop.run(["decode", path.path]))
        #expect(decoded.count == expected.count)
        for (python, samsa) in zip(decoded, expected) {
            #expect(python.batch == samsa.batch)
            #expect(python.records == samsa.records)
        }
    }
}
