import Foundation
import SamsaRecords
import SamsaStorage
import Testing
import SamsaTestSupport

/// `samsa verify` tells a torn tail past the recovery point (which the next writable open cuts, and
/// which holds nothing acknowledged) from damage below it (issue 20).
@Suite("samsa verify: torn tail or damage", .offCooperativePool)
struct VerifyTornTailTests {
    /// A data directory with one partition of 10 batches, closed cleanly (checkpoints written).
    static func makeDirectory() async throws -> String {
        let directory = temporaryPath("samsa-verify")
        let (manager, _) = try LogManager.open(directory: directory, checkpointInterval: nil)
        let log = try manager.createLog(TopicPartition(topic: "t", partition: 0))
        for batch in 0..<10 {
            var builder = RecordBatchBuilder()
            builder.append(timestamp: 1, key: nil, value: Array("value-\(batch)".utf8))
            try await log.append(try builder.build())
        }
        try manager.close()
        return directory
    }

    static func segment(_ directory: String) -> String { "\(directory)/t-0/00000000000000000000.log" }

    @Test("Garbage after the last batch, past the recovery point: OK with a torn tail, exit 0, for the data and the partition directory")
    func tornTail() async throws {
        let directory = try await Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let handle = try #require(FileHandle(forWritingAtPath: Self.segment(directory)))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([UInt8](repeating: 0xAB, count: 300)))
        try handle.close()
        for target in [directory, "\(directory)/t-0"] {
            let (status, output, _) = try runSamsa(["verify", target])
            #expect(status == 0, "\(output)")
            #expect(output.contains("OK, with a torn tail"), "\(output)")
            #expect(output.contains("torn tail: 300 bytes"), "\(output)")
        }
    }

    @Test("A flipped byte inside an acknowledged batch, below the recovery point, is still CORRUPT, exit 1")
    func damageBelowRecoveryPoint() async throws {
        let directory = try await Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let handle = try #require(FileHandle(forUpdatingAtPath: Self.segment(directory)))
        try handle.seek(toOffset: 70)
        let byte = try #require(try handle.read(upToCount: 1)).first!
        try handle.seek(toOffset: 70)
        try handle.write(contentsOf: Data([byte ^ 0xFF]))
        try handle.close()
        let (status, output, _) = try runSamsa(["verify", directory])
        #expect(status == 1, "\(output)")
        #expect(output.contains("CORRUPT"), "\(output)")
    }
}
