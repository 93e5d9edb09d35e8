import Foundation
import Testing
import SamsaTestSupport

/// Runs `samsa` with `input` on its standard input.
func runSamsa(_ arguments: [String], input: String) throws -> (status: Int32, stdout: String, stderr: String) {
    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("samsa")
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    let inPipe = Pipe(), out = Pipe(), err = Pipe()
    process.standardInput = inPipe
    process.standardOutput = out
    process.standardError = err
    try process.run()
    inPipe.fileHandleForWriting.write(Data(input.utf8))
    try inPipe.fileHandleForWriting.close()
    let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, stdout, stderr)
}

@Suite("samsa topics, produce and consume", .offCooperativePool)
struct QueueCommandTests {
    @Test("create, list, describe and delete topics; errors exit 1 with a message")
    func topics() throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        let created = try runSamsa(["topics", "create", "--dir", data, "--topic", "orders", "--partitions", "3", "--flush", "interval:100", "--compression", "zstd"])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(try runSamsa(["topics", "list", "--dir", data]).stdout == "orders\n")
        let described = try runSamsa(["topics", "describe", "--dir", data, "--topic", "orders"])
        #expect(described.stdout.contains("partitions=3 flush=interval:100 compression=zstd"))
        #expect(described.stdout.components(separatedBy: "  partition ").count == 4)
        let again = try runSamsa(["topics", "create", "--dir", data, "--topic", "orders"])
        #expect(again.status == 1 && again.stderr.contains("exists already"))
        let badFlush = try runSamsa(["topics", "create", "--dir", data, "--topic", "x", "--flush", "sometimes"])
        #expect(badFlush.status != 0 && badFlush.stderr.contains("--flush"))
        let missing = try runSamsa(["topics", "list", "--dir", dir.path("nowhere")])
        #expect(missing.status != 0 && missing.stderr.contains("no such data directory"))
        #expect(try runSamsa(["topics", "delete", "--dir", data, "--topic", "orders"]).status == 0)
        #expect(try runSamsa(["topics", "list", "--dir", data]).stdout == "")
        let unknown = try runSamsa(["consume", "--dir", data, "--topic", "orders"])
        #expect(unknown.status == 1 && unknown.stderr.contains("no topic 'orders'"))
    }

    @Test("produce prints an ack per line; consume reads them back, as text, JSON or for a group")
    func produceAndConsume() throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        #expect(try runSamsa(["topics", "create", "--dir", data, "--topic", "t", "--partitions", "2"]).status == 0)
        let lines = (1...20).map { "user-\($0 % 4):event \($0)" }
        let produced = try runSamsa(["produce", "--dir", data, "--topic", "t", "--key-separator", ":", "--acks-json"], input: lines.joined(separator: "\n") + "\n")
        #expect(produced.status == 0, "\(produced.stderr)")
        let acks = try produced.stdout.split(separator: "\n").map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Int]) }
        #expect(Set(acks.compactMap { $0["line"] }) == Set(1...20))
        // A key's records share a partition.
        let byKey = Dictionary(grouping: acks) { "\(($0["line"] ?? 0) % 4)" }
        for group in byKey.values { #expect(Set(group.compactMap { $0["partition"] }).count == 1) }

        let all = try runSamsa(["consume", "--dir", data, "--topic", "t", "--from-beginning"])
        #expect(Set(all.stdout.split(separator: "\n").map(String.init)) == Set((1...20).map { "event \($0)" }))
        let json = try runSamsa(["consume", "--dir", data, "--topic", "t", "--from-beginning", "--json", "--max-records", "3"])
        let objects = try json.stdout.split(separator: "\n").map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects.count == 3)
        #expect(objects.allSatisfy { ($0["key"] as? String)?.hasPrefix("user-") == true && $0["offset"] is Int })
        // Without --from-beginning and without a group: only new records, so none.
        #expect(try runSamsa(["consume", "--dir", data, "--topic", "t"]).stdout == "")

        // A group commits what it printed: the second run continues after the first.
        let first = try runSamsa(["consume", "--dir", data, "--topic", "t", "--group", "g", "--from-beginning", "--max-records", "8"])
        let second = try runSamsa(["consume", "--dir", data, "--topic", "t", "--group", "g", "--from-beginning"])
        let firstValues = first.stdout.split(separator: "\n").map(String.init)
        let secondValues = second.stdout.split(separator: "\n").map(String.init)
        #expect(firstValues.count == 8 && secondValues.count == 12)
        #expect(Set(firstValues + secondValues) == Set((1...20).map { "event \($0)" }))

        let badLine = try runSamsa(["produce", "--dir", data, "--topic", "t", "--key-separator", ":"], input: "no separator here\n")
        #expect(badLine.status != 0 && badLine.stderr.contains("line 1 has no key separator"))
    }

    @Test("perf produce and consume print their summaries, as JSON too")
    func perf() throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        let produced = try runSamsa(["perf", "produce", "--dir", data, "--records", "5000", "--record-size", "200", "--flush", "never", "--json"])
        #expect(produced.status == 0, "\(produced.stderr)")
        let summary = try #require(JSONSerialization.jsonObject(with: Data(produced.stdout.utf8)) as? [String: Any])
        #expect(summary["records"] as? Int == 5000)
        #expect(summary["bytes"] as? Int == 1_000_000)
        #expect((summary["latency_ms"] as? [String: Double])?["p99"] != nil)
        let consumed = try runSamsa(["perf", "consume", "--dir", data])
        #expect(consumed.status == 0 && consumed.stdout.hasPrefix("5000 records, "), "\(consumed.stdout)\(consumed.stderr)")
    }

    @Test("perf produce --send-batch sends through enqueue(contentsOf:); perf consume --owning reads owning records; both report CPU per record")
    func perfBatchesAndOwning() throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        let produced = try runSamsa([
            "perf", "produce", "--dir", data, "--records", "5000", "--record-size", "100", "--send-batch", "700", "--partitions", "3", "--json",
        ])
        #expect(produced.status == 0, "\(produced.stderr)")
        let summary = try #require(JSONSerialization.jsonObject(with: Data(produced.stdout.utf8)) as? [String: Any])
        #expect(summary["records"] as? Int == 5000 && summary["failed"] as? Int == 0)
        #expect(summary["send_batch"] as? Int == 700)
        #expect((summary["cpu_ns_per_record"] as? Double ?? 0) > 0)
        #expect(((summary["latency_ms"] as? [String: Double])?["max"] ?? 0) > 0)
        for owning in [false, true] {
            let consumed = try runSamsa(["perf", "consume", "--dir", data, "--json"] + (owning ? ["--owning"] : []))
            #expect(consumed.status == 0, "\(consumed.stderr)")
            let read = try #require(JSONSerialization.jsonObject(with: Data(consumed.stdout.utf8)) as? [String: Any])
            #expect(read["records"] as? Int == 5000 && read["bytes"] as? Int == 500_000 && read["owning"] as? Bool == owning)
        }
        let limited = try runSamsa(["perf", "consume", "--dir", data, "--records", "1234"])
        #expect(limited.status == 0 && limited.stdout.hasPrefix("1234 records, "), "\(limited.stdout)")
    }
}
