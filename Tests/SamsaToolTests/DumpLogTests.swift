import Foundation
import Glibc
import NIOCore
import SamsaRecords
import Testing
import SamsaTestSupport

/// Runs the built `samsa` executable (a dependency of this test target, so it is built first) and
/// returns its exit status, stdout and stderr.
func runSamsa(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    // The test runner lives in the build products directory, next to the executable.
    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("samsa")
    guard FileManager.default.isExecutableFile(atPath: binary.path) else {
        throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: binary.path])
    }
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, stdout, stderr)
}

/// A temporary directory removed when the test ends.
final class TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

@Suite("samsa dump-log", .offCooperativePool)
struct DumpLogTests {
    /// Writes a segment of `batches` batches of `perBatch` records each with offsets continuing.
    func writeSegment(_ path: String, batches: Int, perBatch: Int, codec: CompressionCodec = .none) throws -> [RecordBatch] {
        var file = ByteBuffer()
        var result: [RecordBatch] = []
        var offset: Int64 = 0
        for b in 0..<batches {
            var builder = RecordBatchBuilder(compression: codec)
            for r in 0..<perBatch {
                builder.append(timestamp: 1000 + Int64(b * perBatch + r), key: Array("k\(r)".utf8), value: Array("value \(b)-\(r)".utf8))
            }
            var batch = try builder.build()
            batch.setBaseOffset(offset)
            offset = batch.nextOffset
            file.writeImmutableBuffer(batch.buffer)
            result.append(batch)
        }
        try Data(file.readableBytesView).write(to: URL(fileURLWithPath: path))
        return result
    }

    @Test("prints one line per batch with offsets, size, codec and CRC", arguments: CompressionCodec.supported)
    func batchLines(codec: CompressionCodec) throws {
        let dir = try TemporaryDirectory()
        let batches = try writeSegment(dir.path("00000000000000000000.log"), batches: 3, perBatch: 4, codec: codec)
        let result = try runSamsa(["dump-log", dir.path("00000000000000000000.log")])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[1].hasPrefix("baseOffset: 4 lastOffset: 7 count: 4 position: \(batches[0].sizeInBytes) size: \(batches[1].sizeInBytes) codec: \(codec)"))
        #expect(lines.allSatisfy { $0.hasSuffix("crcValid: true") })
    }

    @Test("--records --json prints one JSON object per batch and per record")
    func jsonRecords() throws {
        let dir = try TemporaryDirectory()
        _ = try writeSegment(dir.path("a.log"), batches: 2, perBatch: 3, codec: .zstd)
        let result = try runSamsa(["dump-log", "--records", "--json", dir.path("a.log")])
        #expect(result.status == 0)
        let objects = try result.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(objects.count == 2 + 6)
        #expect(objects.map { $0["type"] as? String } == ["batch", "record", "record", "record", "batch", "record", "record", "record"])
        #expect(objects[5]["offset"] as? Int == 3)
        #expect(objects[5]["value"] as? String == "value 1-0")
        #expect(objects[0]["crcValid"] as? Bool == true)
    }

    @Test("a corrupt batch is reported with its byte position and fails the command")
    func corruptBatch() throws {
        let dir = try TemporaryDirectory()
        let batches = try writeSegment(dir.path("c.log"), batches: 3, perBatch: 5)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir.path("c.log")))
        let second = batches[0].sizeInBytes
        bytes[second + 70] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: dir.path("c.log")))
        let result = try runSamsa(["dump-log", dir.path("c.log")])
        #expect(result.status == 1)
        #expect(result.stdout.split(separator: "\n").count == 1, "the valid first batch is still printed")
        #expect(result.stderr.contains("corrupt batch at byte position \(second)"))
        #expect(result.stderr.contains("checksumMismatch"))
    }

    @Test("a file that ends inside a batch is reported as truncated")
    func truncatedFile() throws {
        let dir = try TemporaryDirectory()
        let batches = try writeSegment(dir.path("t.log"), batches: 2, perBatch: 5)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir.path("t.log")))
        try bytes.dropLast(3).write(to: URL(fileURLWithPath: dir.path("t.log")))
        let result = try runSamsa(["dump-log", dir.path("t.log")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("truncated batch at byte position \(batches[0].sizeInBytes)"))
    }

    @Test("a missing file and bad arguments give clear errors")
    func badArguments() throws {
        let missing = try runSamsa(["dump-log", "/nonexistent/segment.log"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("cannot open /nonexistent/segment.log"))
        let noFile = try runSamsa(["dump-log"])
        #expect(noFile.status == 64)
        #expect(noFile.stderr.contains("Missing expected argument"))
    }

    @Test("generate-log writes a segment dump-log reads back")
    func generateThenDump() throws {
        let dir = try TemporaryDirectory()
        let generated = try runSamsa(["generate-log", dir.path("g.log"), "--batches", "4", "--records-per-batch", "25", "--compression", "lz4"])
        #expect(generated.status == 0, "\(generated.stderr)")
        let dumped = try runSamsa(["dump-log", "--records", dir.path("g.log")])
        #expect(dumped.status == 0)
        let lines = dumped.stdout.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("baseOffset") }.count == 4)
        #expect(lines.filter { $0.hasPrefix("| offset") }.count == 100)
        #expect(try runSamsa(["generate-log", dir.path("x.log"), "--compression", "gzip"]).status == 64)
    }
}

@Suite("samsa dump-log and generate-log refuse what would mislead or destroy", .offCooperativePool)
struct SegmentToolSafetyTests {
    @Test("#11: dump-log refuses a FIFO and a device instead of reporting 0 valid batches")
    func nonRegularFiles() throws {
        let dir = try TemporaryDirectory()
        let fifo = dir.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        for path in [fifo, "/dev/urandom"] {
            let result = try runSamsa(["dump-log", path])
            #expect(result.status == 64 && result.stderr.contains("not a regular file"), "\(path): \(result.stderr)")
            #expect(!result.stderr.contains("all valid"))
        }
    }

    @Test("#11: generate-log refuses to overwrite a file unless --force")
    func generateRefusesOverwrite() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("00000000000000000000.log")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: path))
        let refused = try runSamsa(["generate-log", path, "--batches", "2"])
        #expect(refused.status == 64 && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "precious")
        #expect(try runSamsa(["generate-log", path, "--batches", "2", "--force"]).status == 0)
        #expect(try runSamsa(["dump-log", path]).stdout.split(separator: "\n").count == 2)
    }
}
