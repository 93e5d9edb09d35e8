import Foundation
import Samsa
import SamsaStorage
import Testing
import SamsaTestSupport

@Suite("Topics", .offCooperativePool)
struct TopicTests {
    @Test("create, describe, list and delete; topics and their records survive a reopen")
    func lifecycle() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("orders", TopicConfiguration(partitions: 3, flushPolicy: .interval(milliseconds: 100), compression: .lz4))
            try samsa.createTopic("audit", TopicConfiguration(partitions: 1, retentionBytes: 1 << 30))
            #expect(samsa.topics == ["audit", "orders"])
            let producer = samsa.makeProducer()
            for i in 0..<30 { try await producer.send(.text("orders", "order \(i)", partition: i % 3)) }
            await producer.close()
            let description = try samsa.describeTopic("orders")
            #expect(description.configuration.partitions == 3)
            #expect(description.configuration.compression == .lz4)
            #expect(description.partitions.map(\.logEndOffset) == [10, 10, 10])
        }
        try await withSamsa(dir) { samsa in
            #expect(samsa.openReport?.cleanShutdown == true)
            #expect(samsa.topics == ["audit", "orders"])
            let configuration = try samsa.describeTopic("orders").configuration
            #expect(configuration.flushPolicy == .interval(milliseconds: 100))
            #expect(try samsa.describeTopic("audit").configuration.retentionBytes == 1 << 30)
            #expect(try samsa.read(topic: "orders", partition: 1, from: 0).map(\.valueString) == (0..<10).map { "order \($0 * 3 + 1)" })
            try samsa.deleteTopic("orders")
            #expect(samsa.topics == ["audit"])
            #expect(!FileManager.default.fileExists(atPath: "\(dir.path)/orders-0"))
        }
        try await withSamsa(dir) { samsa in
            #expect(samsa.topics == ["audit"])
            // A deleted topic's name is free again, and starts empty.
            try samsa.createTopic("orders")
            #expect(try samsa.read(topic: "orders", partition: 0, from: 0).isEmpty)
        }
    }

    @Test("bad names, bad settings and unknown topics give clear errors")
    func errors() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            let badName = #expect(throws: SamsaError.self) { try samsa.createTopic("no spaces", TopicConfiguration()) }
            #expect(badName?.code == .invalidArgument)
            let zero = #expect(throws: SamsaError.self) { try samsa.createTopic("t", TopicConfiguration(partitions: 0)) }
            #expect(zero?.code == .invalidArgument)
            let gzip = #expect(throws: SamsaError.self) { try samsa.createTopic("t", TopicConfiguration(compression: .gzip)) }
            #expect(gzip?.code == .invalidArgument)
            try samsa.createTopic("t")
            let twice = #expect(throws: SamsaError.self) { try samsa.createTopic("t") }
            #expect(twice?.code == .topicExists)
            let unknown = #expect(throws: SamsaError.self) { try samsa.describeTopic("nope") }
            #expect(unknown?.code == .unknownTopic)
            let partition = #expect(throws: SamsaError.self) { try samsa.read(topic: "t", partition: 5, from: 0) }
            #expect(partition?.code == .unknownPartition)
        }
    }

    @Test("a data directory opens in one place at a time")
    func exclusiveOpen() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { _ in
            let second = #expect(throws: SamsaError.self) { try Samsa.open(directory: dir.path) }
            #expect(second?.message.contains("open in another process") == true)
        }
        // Closed: it opens again.
        try await withSamsa(dir) { _ in }
    }

    @Test("a corrupt topic registry is an error, not an empty directory")
    func corruptRegistry() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in try samsa.createTopic("t") }
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: "\(dir.path)/topics.json"))
        let error = #expect(throws: SamsaError.self) { try Samsa.open(directory: dir.path) }
        #expect(error?.code == .corrupt)
    }
}
