import Foundation
import Glibc
import Samsa
import SamsaStorage
import Testing
import SamsaTestSupport

@Suite("A producer process killed by SIGKILL", .offCooperativePool, .serialized)
struct ProducerCrashTests {
    struct Ack: Hashable {
        var line: Int
        var partition: Int
        var offset: Int64
    }

    /// Runs `samsa produce --acks-json` fed lines `key<N>:round<R>-line<N>` without pause, kills it
    /// `delay` after its first acknowledgement (a slow start on a busy machine must not make the kill
    /// come before it even opened the directory), and returns the acknowledgements it printed
    /// (complete lines only).
    func produceAndKill(directory: String, round: Int, delay: Duration) throws -> [Ack] {
        let child = try SamsaChild(["produce", "--dir", directory, "--topic", "events", "--key-separator", ":", "--acks-json"])
        Thread {
            var line = 1
            // Write until the pipe breaks (the child is gone) or plenty is sent.
            while line < 2_000_000 {
                var chunk = ""
                for _ in 0..<500 {
                    chunk += "key\(line % 97):round\(round)-line\(line)\n"
                    line += 1
                }
                if !child.write(chunk) { break }
            }
            child.closeInput()
        }.start()
        #expect(child.waitForLines(1, timeout: .seconds(60)), "no acknowledgement: \(child.stderr)")
        Thread.sleep(forTimeInterval: Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
        child.send(SIGKILL)
        #expect(child.wait() == 128 + SIGKILL)
        let text = child.stdout
        let complete = text.hasSuffix("\n") ? text : String(text[..<(text.lastIndex(of: "\n") ?? text.startIndex)])
        return try complete.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Int])
            return Ack(line: try #require(object["line"]), partition: try #require(object["partition"]), offset: Int64(try #require(object["offset"])))
        }
    }

    @Test("every record the producer printed as acknowledged is consumed after restart", arguments: ["every-append", "never"])
    func killedProducer(flush: String) async throws {
        let directory = temporaryPath("samsa-produce-crash")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let samsa = try Samsa.open(directory: directory)
            try samsa.createTopic("events", TopicConfiguration(partitions: 3, flushPolicy: FlushPolicyParsing.parse(flush), maxRecordBytes: 4096, segmentBytes: 1 << 20))
            try samsa.close()
        }
        var expected: [Ack: String] = [:]
        for round in 0..<4 {
            let acks = try produceAndKill(directory: directory, round: round, delay: .milliseconds(Int.random(in: 300...900)))
            for ack in acks { expected[ack] = "round\(round)-line\(ack.line)" }
            // Restart: recovery, then read every partition from the start.
            let samsa = try Samsa.open(directory: directory)
            #expect(samsa.openReport?.cleanShutdown == false)
            var values: [Int: [Int64: String]] = [:]
            for partition in 0..<3 {
                var position: Int64 = 0
                while case let records = try samsa.read(topic: "events", partition: partition, from: position), let last = records.last {
                    for record in records { values[partition, default: [:]][record.offset] = record.valueString }
                    position = last.offset + 1
                }
                #expect(position == (try samsa.offsets(topic: "events", partition: partition).end), "partition \(partition) reads to its end")
            }
            try samsa.close()
            let missing = expected.filter { values[$0.key.partition]?[$0.key.offset] != $0.value }
            #expect(missing.count == 0, "round \(round): \(missing.count) of \(expected.count) acknowledged records missing or changed")
            for (ack, _) in missing.prefix(3) {
                Issue.record("line \(ack.line) acknowledged at \(ack.partition)/\(ack.offset), found \(values[ack.partition]?[ack.offset] ?? "nothing")")
            }
        }
        #expect(expected.count > 100, "the producer acknowledged only \(expected.count) records: the test proved little")
    }
}

/// `FlushPolicy` from its command-line spelling.
enum FlushPolicyParsing {
    static func parse(_ text: String) throws -> FlushPolicy {
        try #require(FlushPolicy(text))
    }
}
