import Foundation
import Glibc
import Testing
import SamsaTestSupport

/// Issue 9 #9 from outside: readers beside a writer, and on a copy nobody may write.
@Suite("samsa readers beside a writer", .offCooperativePool, .serialized)
struct ReaderBesideWriterTests {
    @Test("consume --follow in one terminal does not block produce in another, and sees its records", .timeLimit(.minutes(2)))
    func followBesideProduce() throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        #expect(try runSamsa(["topics", "create", "--dir", data, "--topic", "t", "--partitions", "2"]).status == 0)
        let follower = try SamsaChild(["consume", "--dir", data, "--topic", "t", "--from-beginning", "--follow"])
        for round in 0..<2 {
            let produced = try runSamsa(["produce", "--dir", data, "--topic", "t"], input: (1...10).map { "r\(round)-\($0)\n" }.joined())
            #expect(produced.status == 0, "\(produced.stderr)")
        }
        #expect(follower.waitForLines(20), "\(follower.stdout)")
        follower.send(SIGTERM)
        #expect(follower.wait() == 143, "\(follower.stderr)")
        #expect(Set(follower.stdout.split(separator: "\n").map(String.init)) == Set((0..<2).flatMap { round in (1...10).map { "r\(round)-\($0)" } }))
    }

    @Test("topics list, describe, consume and verify read a copy without writing a byte of it")
    func readOnlyCopy() throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        #expect(try runSamsa(["topics", "create", "--dir", data, "--topic", "t"]).status == 0)
        #expect(try runSamsa(["produce", "--dir", data, "--topic", "t"], input: "a\nb\nc\n").status == 0)
        // chmod -R a-w (root ignores it, so the proof is that nothing changed, not that writes failed).
        #expect(try runCommand("/bin/chmod", ["-R", "a-w", data]) == 0)
        defer { _ = try? runCommand("/bin/chmod", ["-R", "u+w", data]) }
        let before = try snapshot(data)
        #expect(try runSamsa(["topics", "list", "--dir", data]).stdout == "t\n")
        #expect(try runSamsa(["topics", "describe", "--dir", data]).stdout.contains("end 3"))
        #expect(try runSamsa(["consume", "--dir", data, "--topic", "t", "--from-beginning"]).stdout == "a\nb\nc\n")
        #expect(try runSamsa(["verify", data]).status == 0)
        #expect(try snapshot(data) == before)
    }

    /// Runs `produce` fed `chunks` of 100 lines (70 bytes each) on a topic with 64 KiB segments, so the
    /// writer rolls often; `body` runs while it writes.
    func whileProducing(_ chunks: Int, _ body: (String) throws -> Void) throws {
        let dir = try TemporaryDirectory()
        let data = dir.path("data")
        let created = try runSamsa([
            "topics", "create", "--dir", data, "--topic", "t", "--flush", "never", "--segment-bytes", "65536", "--max-record-bytes", "1024",
        ])
        #expect(created.status == 0)
        let producer = try SamsaChild(["produce", "--dir", data, "--topic", "t", "--acks-json"])
        let feeder = Thread {
            for chunk in 0..<chunks { producer.write((0..<100).map { "chunk \(chunk) line \($0) " + String(repeating: "z", count: 50) + "\n" }.joined()) }
            producer.closeInput()
        }
        feeder.start()
        #expect(producer.waitForLines(1000))
        try body(data)
        #expect(producer.wait() == 0, "\(producer.stderr)")
    }

    @Test("verify on a directory being written reports no false damage", .timeLimit(.minutes(2)))
    func verifyLiveDirectory() throws {
        try whileProducing(400) { data in
            for _ in 0..<10 {
                let verified = try runSamsa(["verify", data])
                #expect(verified.status == 0, "\(verified.stdout)")
            }
        }
    }

    @Test(
        "describe on a directory whose writer rolls segments never crashes", .timeLimit(.minutes(2)))
    func describeDuringRolls() throws {
        try whileProducing(2000) { data in
            for _ in 0..<40 {
                let described = try runSamsa(["topics", "describe", "--dir", data])
                #expect(described.status == 0, "\(described.stderr)")
            }
        }
    }
}

func runCommand(_ path: String, _ arguments: [String]) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

/// Every file under `path` with its size and modification time.
func snapshot(_ path: String) throws -> [String: String] {
    var result: [String: String] = [:]
    let enumerator = try #require(FileManager.default.enumerator(atPath: path))
    while let name = enumerator.nextObject() as? String {
        let attributes = try FileManager.default.attributesOfItem(atPath: "\(path)/\(name)")
        result[name] = "\(attributes[.size] ?? 0) \((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
    }
    return result
}
