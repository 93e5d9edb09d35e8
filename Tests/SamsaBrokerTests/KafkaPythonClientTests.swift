import Dispatch
import Foundation
import Synchronization
import SamsaTestSupport
import Testing

/// Runs a client program on a thread of its own: waiting for it on the cooperative pool would starve
/// the broker's tasks of the pool's few threads.
enum ClientProcess {
    static func run(_ arguments: [String], input: Data? = nil) async throws -> Data {
        try await blocking { try runBlocking(arguments, input: input) }
    }

    private static func runBlocking(_ arguments: [String], input: Data?) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe(), errors = Pipe(), standardInput = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = standardInput
        try process.run()
        // Feed stdin and drain stderr on threads of their own so no pipe can fill and stall the client.
        let errorText = Mutex("")
        let done = DispatchGroup()
        done.enter()
        Thread.detachNewThread {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            errorText.withLock { $0 = text }
            done.leave()
        }
        Thread.detachNewThread {
            if let input { standardInput.fileHandleForWriting.write(input) }
            try? standardInput.fileHandleForWriting.close()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        done.wait()
        guard process.terminationStatus == 0 else {
            throw Failure(message: "\(arguments.joined(separator: " ")) failed (exit \(process.terminationStatus)):\n\(errorText.withLock { $0 })")
        }
        return data
    }

    struct Failure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}

/// The Python scripts in Tests/Interop, run with the test virtualenv's interpreter (`SAMSA_PYTHON`, set
/// by scripts/test.sh; kafka-python is installed by `require_python_packages`).
enum PythonClient {
    static let interop = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Interop")
    static let python = ProcessInfo.processInfo.environment["SAMSA_PYTHON"] ?? "python3"

    static func run(_ script: String, _ arguments: [String]) async throws -> Data {
        try await ClientProcess.run([python, interop.appendingPathComponent(script).path] + arguments)
    }
}

/// kafka-python 3.0.12 against the broker: admin create and list, a producer with acks=all, and a
/// consumer by assignment from the beginning.
@Suite("Broker with kafka-python")
struct KafkaPythonClientTests {
    struct Outcome: Decodable {
        struct Record: Decodable, Equatable {
            var offset: Int64
            var key: String?
            var value: String
        }
        var topics: [String]
        var offsets: [Int64]
        var end: Int64
        var records: [Record]
    }

    @Test("Produce then consume with kafka-python", arguments: ["none", "lz4", "zstd"])
    func produceThenConsume(compression: String) async throws {
        try await TestBroker.with(flushPolicy: .everyAppend) { broker in
            let count = 200
            let port = broker.port
            let data = try await PythonClient.run("kafka_python_client.py", ["127.0.0.1:\(port)", "py-\(compression)", "\(count)", compression])
            let outcome = try JSONDecoder().decode(Outcome.self, from: data)
            #expect(outcome.topics.contains("py-\(compression)"))
            #expect(outcome.offsets == (0..<Int64(count)).map { $0 })
            #expect(outcome.end == Int64(count))
            let expected = (0..<count).map { index in
                Outcome.Record(offset: Int64(index), key: index % 2 == 0 ? "key-\(index % 3)" : nil, value: "value-\(index)")
            }
            #expect(outcome.records == expected)
        }
    }

    struct GroupOutcome: Decodable {
        var first: [String]
        var committed: [String: Int64]
        var second: [String]
        var split: [[Int32]]
        var afterLeave: [[Int32]]
        var groups: [[String]]
        /// What a member's poll raised (its poller then stops: a stale assignment is not a rebalance bug).
        var pollErrors: [String]
    }

    @Test("A consumer group commits; a new member resumes at the commit; two members split and rebalance")
    func consumerGroup() async throws {
        try await TestBroker.with(flushPolicy: .everyAppend) { broker in
            let data = try await PythonClient.run("kafka_python_group.py", ["127.0.0.1:\(broker.port)", "grouped"])
            let outcome = try JSONDecoder().decode(GroupOutcome.self, from: data)
            #expect(outcome.pollErrors == [])
            #expect(outcome.first == (0..<10).map { "first-\($0)" })
            #expect(outcome.committed == ["0": 5, "1": 5])
            // Exactly the records after the commit: nothing again, nothing skipped.
            #expect(outcome.second == (0..<5).map { "second-\($0)" })
            #expect(outcome.split == [[0], [1]])
            #expect(outcome.afterLeave == [[0, 1]])
            #expect(outcome.groups == [["readers", "Empty"]])
        }
    }

    struct IdempotentOutcome: Decodable {
        var offsets: [Int64]
        var values: [String]
    }

    @Test("kafka-python's default producer (idempotent, acks=all) writes each record once")
    func idempotentProducer() async throws {
        try await TestBroker.with(flushPolicy: .everyAppend) { broker in
            let data = try await PythonClient.run("kafka_python_idempotent.py", ["127.0.0.1:\(broker.port)", "idempotent", "500"])
            let outcome = try JSONDecoder().decode(IdempotentOutcome.self, from: data)
            #expect(outcome.offsets == (0..<500).map { Int64($0) })
            #expect(outcome.values == (0..<500).map { "value-\($0)" })
        }
    }
}
