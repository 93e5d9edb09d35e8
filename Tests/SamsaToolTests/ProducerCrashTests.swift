import Foundation
import Glibc
import Samsa
import SamsaStorage
import Testing

@Suite("A producer process killed by SIGKILL", .serialized)
struct ProducerCrashTests {
    struct Ack: Hashable {
        var line: Int
        var partition: Int
        var offset: Int64
    }

    final class Collected: @unchecked Sendable {
        // @unchecked: `data` is written once by the reader thread before it signals `finished`, and read
        // only after waiting for that signal.
        var data = Data()
        let finished = DispatchSemaphore(value: 0)
    }

    /// Runs `samsa produce --acks-json` fed lines `key<N>:round<R>-line<N>` without pause, kills it
    /// after `delay`, and returns the acknowledgements it printed (complete lines only).
    func produceAndKill(directory: String, round: Int, delay: Duration) throws -> [Ack] {
        signal(SIGPIPE, SIG_IGN)
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("samsa")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["produce", "--dir", directory, "--topic", "events", "--key-separator", ":", "--acks-json"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let collected = Collected()
        Thread {
            collected.data = output.fileHandleForReading.readDataToEndOfFile()
            collected.finished.signal()
        }.start()
        let handle = input.fileHandleForWriting
        Thread {
            var line = 1
            // Write until the pipe breaks (the child is gone) or plenty is sent.
            while line < 2_000_000 {
                var chunk = ""
                for _ in 0..<500 {
                    chunk += "key\(line % 97):round\(round)-line\(line)\n"
                    line += 1
                }
                let bytes = Array(chunk.utf8)
                let written = bytes.withUnsafeBytes { write(handle.fileDescriptor, $0.baseAddress, $0.count) }
                if written < 0 { break }
            }
            try? handle.close()
        }.start()
        Thread.sleep(forTimeInterval: Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        collected.finished.wait()
        let text = String(decoding: collected.data, as: UTF8.self)
        let complete = text.hasSuffix("\n") ? text : String(text[..<(text.lastIndex(of: "\n") ?? text.startIndex)])
        return try complete.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Int])
            return Ack(line: try #require(object["line"]), partition: try #require(object["partition"]), offset: Int64(try #require(object["offset"])))
        }
    }

    @Test("every record the producer printed as acknowledged is consumed after restart", arguments: ["every-append", "never"])
    func killedProducer(flush: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-produce-crash-\(UUID().uuidString)").path
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
