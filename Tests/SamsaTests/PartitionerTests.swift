import Foundation
import Samsa
import SamsaRecords
import Testing
import SamsaTestSupport

@Suite("Kafka's murmur2 partitioner", .offCooperativePool)
struct PartitionerTests {
    @Test("hashes match Kafka's Utils.murmur2 test vectors")
    func kafkaVectors() {
        // From Kafka's UtilsTest.testMurmur2.
        let cases: [(String, Int32)] = [
            ("21", -973_932_308), ("foobar", -790_332_482), ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829), ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971), ("abc", 479_470_107),
        ]
        for (key, expected) in cases {
            #expect(Murmur2.hash(Array(key.utf8)) == expected, "\(key)")
        }
    }

    @Test("keys land on the partition kafka-python's default partitioner picks")
    func kafkaPythonPartitions() throws {
        var generator = SystemRandomNumberGenerator()
        let keys = (0..<300).map { index in (0..<(index % 40)).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        let partitionCounts = [1, 3, 7, 12, 100]
        let hexKeys = keys.map { $0.map { String(format: "%02x", $0) }.joined() }
        let script = """
            import sys
            from kafka.partitioner.default import murmur2
            counts = [int(c) for c in sys.argv[1].split(',')]
            for line in sys.stdin.read().split():
                key = bytes.fromhex(line[1:])
                h = murmur2(key) & 0x7fffffff
                print(' '.join(str(h % c) for c in counts))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let python = ProcessInfo.processInfo.environment["SAMSA_PYTHON"] ?? "python3"
        process.arguments = [python, "-c", script, partitionCounts.map(String.init).joined(separator: ",")]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        // A leading "k" keeps the empty key a token.
        input.fileHandleForWriting.write(Data(hexKeys.map { "k" + $0 }.joined(separator: "\n").utf8))
        try input.fileHandleForWriting.close()
        let lines = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "\(python) with kafka-python failed (scripts/test.sh installs it)")
        try #require(lines.count == keys.count)
        for (key, line) in zip(keys, lines) {
            let expected = line.split(separator: " ").map { Int($0)! }
            #expect(partitionCounts.map { Murmur2.partition(forKey: key, partitions: $0) } == expected)
        }
    }
}
