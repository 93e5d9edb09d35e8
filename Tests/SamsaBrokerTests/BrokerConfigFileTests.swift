import Foundation
import Glibc
import SamsaProtocol
import Testing
import SamsaTestSupport

/// `samsa broker --config FILE`: the options as KEY = VALUE lines; the command line wins; mistakes in
/// the file are refused with its name and line before anything starts.
@Suite("samsa broker --config")
struct BrokerConfigFileTests {
    static func run(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = BrokerProcessTests.binary
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    @Test("options come from the file, the command line overrides them")
    func fileAndOverride() async throws {
        let root = temporaryPath("samsa-config")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        // Written with CRLF line ends, as an editor on Windows would.
        try """
            # a broker from a file
            dir = \(root)/data
            listen = 127.0.0.1:0
            broker-id = 7
            default-partitions = 3
            auto-create-topics = true

            """.replacingOccurrences(of: "\n", with: "\r\n").write(toFile: "\(root)/broker.conf", atomically: true, encoding: .utf8)
        let broker = try BrokerProcessTests.BrokerProcess(arguments: ["broker", "--config", "\(root)/broker.conf", "--broker-id", "3"])
        defer { broker.signal(SIGTERM) }
        let connection = try await TestConnection(port: broker.port)
        var request = MetadataRequest()
        var wanted = MetadataRequest.MetadataRequestTopic()
        wanted.name = "auto"
        request.topics = [wanted]
        request.allowAutoTopicCreation = true
        let response = try await connection.request(request, version: 12, expecting: MetadataResponse.self)
        try await connection.close()
        #expect(response.brokers.map(\.nodeId) == [3], "the command line's --broker-id wins over the file's")
        #expect(response.topics.first?.partitions.count == 3, "default-partitions and auto-create-topics come from the file")
        #expect(FileManager.default.fileExists(atPath: "\(root)/data/meta.properties"))
    }

    @Test(
        "a bad file is refused with its line, before a data directory is made",
        arguments: [
            ("brokerid = 1", "unknown key 'brokerid'"), ("broker-id = one", "'one' is not a valid value for broker-id"),
            ("listen 127.0.0.1:0", "expected KEY = VALUE"), ("flush = sometimes", "not a valid value for flush"),
            ("segment-bytes = 0", "must be positive"),
        ])
    func refused(line: String, message: String) throws {
        let root = temporaryPath("samsa-config")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "dir = \(root)/data\n\(line)\n".write(toFile: "\(root)/broker.conf", atomically: true, encoding: .utf8)
        let (status, stderr) = try Self.run(["broker", "--config", "\(root)/broker.conf"])
        #expect(status != 0)
        #expect(stderr.contains(message), "\(stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(root)/data"))
    }

    @Test("no --dir and no dir in a file is refused; an unreadable file is named")
    func missing() throws {
        let noDir = try Self.run(["broker", "--listen", "127.0.0.1:0"])
        #expect(noDir.status != 0 && noDir.stderr.contains("--dir"))
        let noFile = try Self.run(["broker", "--config", "/nonexistent/samsa.conf"])
        #expect(noFile.status != 0 && noFile.stderr.contains("/nonexistent/samsa.conf"))
    }
}
