import Foundation
import NIOCore
import SamsaProtocol
import SamsaRecords
import Testing
import SamsaTestSupport

/// `samsa broker` as a process: it prints where it listens, stops cleanly on SIGTERM, and after a
/// SIGKILL keeps every record it acknowledged with acks=-1.
@Suite("samsa broker process")
struct BrokerProcessTests {
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("samsa")

    /// A started `samsa broker` and the port from its one line on stdout.
    final class BrokerProcess: Sendable {
        let process: Process
        let port: Int

        /// `listen` 127.0.0.1:0 picks a free port; a fixed one lets a restarted broker keep its address.
        /// `log`: a file that gets the broker's stderr (appended), else it is dropped.
        convenience init(directory: String, listen: String = "127.0.0.1:0", extra: [String] = [], log: String? = nil) throws {
            try self.init(arguments: ["broker", "--dir", directory, "--listen", listen, "--flush", "every-append"] + extra, log: log)
        }

        /// `descriptorLimit`: started under `ulimit -n` of this (through sh, which then execs it).
        init(arguments: [String], log: String? = nil, descriptorLimit: Int? = nil) throws {
            process = Process()
            if let descriptorLimit {
                process.executableURL = URL(fileURLWithPath: "/bin/sh")
                process.arguments = ["-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\"", BrokerProcessTests.binary.path] + arguments
            } else {
                process.executableURL = BrokerProcessTests.binary
                process.arguments = arguments
            }
            let output = Pipe()
            process.standardOutput = output
            if let log {
                if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
                try handle.seekToEnd()
                process.standardError = handle
            } else {
                process.standardError = FileHandle.nullDevice
            }
            try process.run()
            // The line comes once the broker accepts connections.
            var line = Data()
            while !line.contains(UInt8(ascii: "\n")) {
                let chunk = output.fileHandleForReading.availableData
                guard !chunk.isEmpty else { throw Failed(message: "samsa broker exited before listening") }
                line.append(chunk)
            }
            let text = String(decoding: line, as: UTF8.self)
            guard text.hasPrefix("listening on "), let port = text.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
            else { throw Failed(message: "unexpected first line: \(text)") }
            self.port = port
        }

        func signal(_ number: Int32) {
            kill(process.processIdentifier, number)
            process.waitUntilExit()
        }

        /// A test that failed before stopping its broker leaves no broker running (one did, once).
        deinit {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    struct Failed: Error {
        let message: String
    }

    @Test("--zero-copy-fetch true and false serve the same fetch bytes from the same data; other values are refused")
    func zeroCopyFetchOption() async throws {
        let directory = temporaryPath("samsa-broker")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var frames: [ByteBuffer] = []
        for (index, zeroCopy) in ["true", "false"].enumerated() {
            let broker = try BrokerProcess(directory: directory, extra: ["--zero-copy-fetch", zeroCopy])
            let connection = try await TestConnection(port: broker.port)
            if index == 0 {
                _ = try await ProduceFetchTests.createTopic("zc", partitions: 1, on: connection)
                #expect(try await ProduceFetchTests.produce([try makeBatch(count: 5), try makeBatch(count: 3, startingAt: 5)], to: "zc", on: connection).errorCode == 0)
            }
            try await connection.send(
                KafkaFraming.encodeRequest(ProduceFetchTests.fetchRequest("zc", offset: 2), version: 12, correlationId: 9, clientId: nil))
            frames.append(try #require(try await connection.receive()))
            try await connection.close()
            broker.signal(SIGTERM)
        }
        #expect(frames[0] == frames[1])
        let (_, response) = try KafkaFraming.decodeResponse(frames[0], as: FetchResponse.self, version: 12)
        #expect(try ProduceFetchTests.values(in: response.responses[0].partitions[0].records, from: 2) == (2..<8).map { "value-\($0)" })
        #expect(throws: Failed.self) { try BrokerProcess(directory: directory, extra: ["--zero-copy-fetch", "maybe"]) }
    }

    @Test("SIGTERM stops the broker cleanly: exit 0 and the data directory marked clean")
    func sigtermIsClean() async throws {
        let directory = temporaryPath("samsa-broker")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcess(directory: directory)
        let connection = try await TestConnection(port: broker.port)
        _ = try await ProduceFetchTests.createTopic("term", partitions: 1, on: connection)
        #expect(try await ProduceFetchTests.produce([try makeBatch(count: 5)], to: "term", on: connection).errorCode == 0)
        try await connection.close()
        broker.signal(SIGTERM)
        #expect(broker.process.terminationReason == .exit && broker.process.terminationStatus == 0)
        #expect(FileManager.default.fileExists(atPath: "\(directory)/.clean-shutdown"))
    }

    @Test("After SIGKILL under acks=-1 load, every acknowledged record is there after the restart")
    func acknowledgedRecordsSurviveKill() async throws {
        let directory = temporaryPath("samsa-broker")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerProcess(directory: directory)
        let connection = try await TestConnection(port: broker.port)
        _ = try await ProduceFetchTests.createTopic("durable", partitions: 1, on: connection)
        // Requests one after another; the kill lands while one is in flight.
        var acknowledged: [(offset: Int64, first: Int)] = []
        let killer = Task.detached {
            try await Task.sleep(for: .milliseconds(300))
            broker.signal(SIGKILL)
        }
        var next = 0
        do {
            while true {
                let response = try await ProduceFetchTests.produce([try makeBatch(count: 10, startingAt: next)], to: "durable", acks: -1, on: connection)
                guard response.errorCode == 0 else { break }
                acknowledged.append((response.baseOffset, next))
                next += 10
            }
        } catch {
            // The connection died with the broker.
        }
        try await killer.value
        try await connection.close()
        #expect(acknowledged.count > 0)

        let restarted = try BrokerProcess(directory: directory)
        let reader = try await TestConnection(port: restarted.port)
        var values: [Int64: String] = [:]
        var offset: Int64 = 0
        while true {
            let response = try await reader.request(ProduceFetchTests.fetchRequest("durable", offset: offset), version: 12, expecting: FetchResponse.self)
            let partition = try #require(response.responses.first?.partitions.first)
            var remaining = partition.records ?? ByteBuffer()
            guard remaining.readableBytes > 0 else { break }
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
                for record in try batch.decodeRecords() { values[record.offset] = String(buffer: record.value!) }
                offset = batch.nextOffset
            }
        }
        for (base, first) in acknowledged {
            for index in 0..<10 {
                #expect(values[base + Int64(index)] == "value-\(first + index)", "acknowledged record at \(base + Int64(index)) lost")
            }
        }
        try await reader.close()
        restarted.signal(SIGTERM)
    }
}
