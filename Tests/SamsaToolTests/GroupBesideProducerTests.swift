import Foundation
import Glibc
import Samsa
import SamsaTestSupport
import Testing

/// Issue 22 item 6, with real processes: `samsa consume --group` opens the directory to consume (no
/// directory lock) and owns its group through `groups/<group>.lock`, so it runs beside `samsa produce`
/// and beside other groups' consumers; a second consumer of the same group is refused.
@Suite("consume --group beside produce", .offCooperativePool, .serialized, .timeLimit(.minutes(3)))
struct GroupBesideProducerTests {
    func dataDirectory(_ dir: TemporaryDirectory, at path: String? = nil, partitions: Int = 2) throws -> String {
        let data = path ?? dir.path("data")
        let created = try runSamsa(["topics", "create", "--dir", data, "--topic", "t", "--partitions", "\(partitions)"])
        #expect(created.status == 0, "\(created.stderr)")
        return data
    }

    /// The group's committed offsets of `t`, read as any other process reads them.
    func committed(_ data: String, group: String, partitions: Int = 2) throws -> [Int64?] {
        let reader = try Samsa.openReadOnly(directory: data)
        defer { try? reader.close() }
        return try (0..<partitions).map { try reader.committedOffset(group: group, topic: "t", partition: $0) }
    }

    func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    @Test("produce and consume --group run at once; a second consumer of the group is refused; another group runs")
    func produceBesideGroups() throws {
        let dir = try TemporaryDirectory()
        let data = try dataDirectory(dir)
        let producer = try SamsaChild(["produce", "--dir", data, "--topic", "t", "--acks-json", "--linger-ms", "0"])
        producer.write((0..<20).map { "a\($0)\n" }.joined())
        #expect(producer.waitForLines(20), "\(producer.stderr)")
        let consumer = try SamsaChild(["consume", "--dir", data, "--topic", "t", "--group", "g", "--from-beginning", "--follow"])
        #expect(consumer.waitForLines(20), "\(consumer.stderr)")
        // The producer goes on while the group consumes: the consumer follows it across processes.
        producer.write((20..<40).map { "a\($0)\n" }.joined())
        #expect(producer.waitForLines(40), "\(producer.stderr)")
        #expect(consumer.waitForLines(40), "\(consumer.stderr)")

        let second = try runSamsa(["consume", "--dir", data, "--topic", "t", "--group", "g", "--from-beginning"])
        #expect(second.status == 1 && second.stdout.isEmpty, "\(second)")
        #expect(second.stderr.contains("group 'g'") && second.stderr.contains("another process"), "\(second.stderr)")
        #expect(!second.stderr.contains("locked: locked"), "\(second.stderr)")

        let other = try runSamsa(["consume", "--dir", data, "--topic", "t", "--group", "h", "--from-beginning"])
        #expect(other.status == 0, "\(other.stderr)")
        #expect(Set(lines(other.stdout)) == Set((0..<40).map { "a\($0)" }))

        consumer.send(SIGTERM)
        #expect(consumer.wait() == 143, "\(consumer.stderr)")
        #expect(Set(lines(consumer.stdout)) == Set((0..<40).map { "a\($0)" }))
        producer.closeInput()
        #expect(producer.wait() == 0, "\(producer.stderr)")
        // Both groups' commits are on disk, and the producer closed the directory cleanly beside them.
        #expect(try committed(data, group: "g").map { $0 ?? 0 }.reduce(0, +) == 40)
        #expect(try committed(data, group: "h").map { $0 ?? 0 }.reduce(0, +) == 40)
        #expect(FileManager.default.fileExists(atPath: "\(data)/.clean-shutdown"))
    }

    @Test("a consumer killed with -9 leaves no lock behind: the next one resumes from the committed offset")
    func killedConsumerResumes() throws {
        let dir = try TemporaryDirectory()
        let data = try dataDirectory(dir, partitions: 1)
        let producer = try SamsaChild(["produce", "--dir", data, "--topic", "t", "--acks-json", "--linger-ms", "0"])
        producer.write((0..<30).map { "v\($0)\n" }.joined())
        #expect(producer.waitForLines(30), "\(producer.stderr)")
        let first = try SamsaChild(["consume", "--dir", data, "--topic", "t", "--group", "g", "--from-beginning", "--follow"])
        #expect(first.waitForLines(30), "\(first.stderr)")
        // The commit follows the printing: wait for it to land (nothing else announces it).
        let deadline = ContinuousClock.now + .seconds(30)
        while try committed(data, group: "g", partitions: 1) != [30] && ContinuousClock.now < deadline { usleep(10_000) }
        #expect(try committed(data, group: "g", partitions: 1) == [30])
        first.send(SIGKILL)
        #expect(first.wait() == 128 + SIGKILL)
        #expect(try committed(data, group: "g", partitions: 1) == [30])

        producer.write((30..<40).map { "v\($0)\n" }.joined())
        #expect(producer.waitForLines(40), "\(producer.stderr)")
        let next = try runSamsa(["consume", "--dir", data, "--topic", "t", "--group", "g", "--from-beginning"])
        #expect(next.status == 0, "\(next.stderr)")
        #expect(lines(next.stdout) == (30..<40).map { "v\($0)" })
        #expect(try committed(data, group: "g", partitions: 1) == [40])
        producer.closeInput()
        #expect(producer.wait() == 0, "\(producer.stderr)")
    }

    @Test("on a read-only file system, consume --group says why it cannot commit; plain consume reads",
          .enabled(if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/bin/mount")))
    func readOnlyFileSystem() throws {
        let dir = try TemporaryDirectory()
        let mountPoint = dir.path("ro")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        try mount(["-t", "tmpfs", "-o", "size=16m", "tmpfs", mountPoint])
        defer { try? mount(["-l", mountPoint], tool: "/bin/umount") }
        let data = try dataDirectory(dir, at: "\(mountPoint)/data", partitions: 1)
        #expect(try runSamsa(["produce", "--dir", data, "--topic", "t"], input: "x\ny\n").status == 0)
        try mount(["-o", "remount,ro", mountPoint])
        let group = try runSamsa(["consume", "--dir", data, "--topic", "t", "--group", "g", "--from-beginning"])
        #expect(group.status == 1 && group.stdout.isEmpty, "\(group)")
        #expect(group.stderr.contains("group 'g'") && group.stderr.contains("Read-only file system"), "\(group.stderr)")
        let plain = try runSamsa(["consume", "--dir", data, "--topic", "t", "--from-beginning"])
        #expect(plain.status == 0 && plain.stdout == "x\ny\n", "\(plain)")
    }

    private func mount(_ arguments: [String], tool: String = "/bin/mount") throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "\(tool) \(arguments)")
    }
}
