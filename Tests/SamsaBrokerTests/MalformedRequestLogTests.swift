import Foundation
import Logging
import NIOCore
import SamsaProtocol
import SamsaStorage
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// A client flooding garbage cannot flood the log (issue 20; the hostile soak found one warning line per
/// closed connection): one warning per interval, with the count since, the rest at debug.
@Suite("Malformed-request log lines")
struct MalformedRequestLogTests {
    @Test("1,000 malformed connections in a burst: one warning, 999 debug lines, every one counted by the next warning")
    func throttled() {
        let logs = CapturedLogs()
        let log = MalformedRequestLog(every: .seconds(3600))
        for index in 0..<1_000 { log.closing(peer: "peer-\(index)", reason: "request size -5 is outside 0...104857600", logger: logs.logger) }
        let warnings = logs.entries.filter { $0.level == .warning }
        #expect(warnings.count == 1)
        #expect(warnings.first?.metadata["closed_since_last_warning"] == "1")
        #expect(logs.entries.filter { $0.level == .debug }.count == 999)
        // With the interval passed, the next warning counts those closed meanwhile.
        let quick = MalformedRequestLog(every: .zero)
        let second = CapturedLogs()
        quick.closing(peer: "a", reason: "x", logger: second.logger)
        quick.closing(peer: "b", reason: "y", logger: second.logger)
        #expect(second.entries.map(\.level) == [.warning, .warning])
        #expect(second.entries.last?.metadata["peer"] == "b")
    }

    @Test("A broker fed 200 garbage connections logs at most one warning about them")
    func brokerGarbageFlood() async throws {
        let logs = CapturedLogs()
        let directory = temporaryPath("samsa-garbage")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try await Broker.start(
            BrokerConfiguration(dataDirectory: directory, port: 0, eventLoopThreads: 1, ioThreads: 2, logger: logs.logger))
        for _ in 0..<200 {
            let connection = try await TestConnection(port: broker.localAddress.port!)
            var garbage = ByteBuffer()
            garbage.writeInteger(Int32(-5))
            garbage.writeBytes([1, 2, 3, 4])
            try await connection.send(garbage)
            #expect(try await connection.receive() == nil)
        }
        try await broker.stop()
        let about = logs.entries.filter { $0.message.contains("malformed") }
        #expect(about.count == 200)
        #expect(about.filter { $0.level == .warning }.count == 1)
    }

    @Test("On a full disk every produce fails with KAFKA_STORAGE_ERROR, and the log gets one warning about them, not one each")
    func fullDiskProduceFailures() async throws {
        let logs = CapturedLogs()
        let disk = FaultInjectingFileSystem()
        let directory = temporaryPath("samsa-full")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = BrokerConfiguration(dataDirectory: directory, port: 0, eventLoopThreads: 1, ioThreads: 2, logger: logs.logger)
        configuration.fileSystem = disk
        let broker = try await Broker.start(configuration)
        let connection = try await TestConnection(port: broker.localAddress.port!)
        #expect(try await ProduceFetchTests.createTopic("full", partitions: 1, on: connection).errorCode == 0)
        disk.inject(.write, errno: ENOSPC, pathContains: "/full-0/", times: .max)
        for _ in 0..<50 {
            let result = try await ProduceFetchTests.produce([try makeBatch(count: 2)], to: "full", on: connection)
            #expect(result.errorCode == ErrorCode.kafkaStorageError.rawValue)
        }
        try await connection.close()
        try await broker.stop()
        let about = logs.entries.filter { $0.message.contains("produce failed in storage") }
        #expect(about.count == 50)
        #expect(about.filter { $0.level == .warning }.count == 1)
    }
}
