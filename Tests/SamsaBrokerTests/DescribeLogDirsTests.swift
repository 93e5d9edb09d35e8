import Foundation
import SamsaProtocol
import Testing
@testable import SamsaBroker
import SamsaTestSupport

/// DescribeLogDirs at every version served: the one data directory, each partition held here with its
/// size and offset lag, unknown ones left out, and v4's space figures.
@Suite("DescribeLogDirs")
struct DescribeLogDirsTests {
    static func request(_ topics: [(String, [Int32])]?) -> DescribeLogDirsRequest {
        var request = DescribeLogDirsRequest()
        request.topics = topics.map { named in
            named.map { name, partitions in
                var topic = DescribeLogDirsRequest.DescribableLogDirTopic()
                topic.topic = name
                topic.partitions = partitions
                return topic
            }
        }
        return request
    }

    /// (topic, partition) → (size, lag, future) in the one directory's answer.
    static func partitions(_ response: DescribeLogDirsResponse) throws -> [String: (Int64, Int64, Bool)] {
        let directory = try #require(response.results.first)
        var found: [String: (Int64, Int64, Bool)] = [:]
        for topic in directory.topics {
            for partition in topic.partitions {
                found["\(topic.name)-\(partition.partitionIndex)"] = (partition.partitionSize, partition.offsetLag, partition.isFutureKey)
            }
        }
        return found
    }

    @Test("every version: all partitions (null), named ones, unknown ones left out, duplicates once, sizes and lags, v4 space")
    func everyVersion() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("dirs-a", partitions: 2, on: connection)
            _ = try await ProduceFetchTests.createTopic("dirs-b", partitions: 1, on: connection)
            #expect(try await ProduceFetchTests.produce([try makeBatch(count: 50)], to: "dirs-a", on: connection).errorCode == 0)
            let written = try #require(broker.broker.dispatcher.topics.log("dirs-a", 0)).sizeInBytes
            #expect(written > 0)
            for version in try #require(SupportedApis.versions[.describeLogDirs]) {
                let all = try await connection.request(Self.request(nil), version: version, expecting: DescribeLogDirsResponse.self)
                #expect(all.errorCode == 0 && all.results.count == 1, "v\(version)")
                let directory = try #require(all.results.first)
                #expect(directory.errorCode == 0)
                #expect(directory.logDir == broker.directory, "v\(version)")
                let found = try Self.partitions(all)
                #expect(Set(found.keys) == ["dirs-a-0", "dirs-a-1", "dirs-b-0"], "v\(version): \(found.keys)")
                #expect(found["dirs-a-0"]?.0 == Int64(written) && found["dirs-a-1"]?.0 == 0)
                #expect(found.values.allSatisfy { $0.1 == 0 && !$0.2 }, "current replicas lag 0 and are not future ones")
                if version >= 4 {
                    #expect(directory.totalBytes > 0 && directory.usableBytes > 0 && directory.usableBytes <= directory.totalBytes, "v\(version)")
                } else {
                    #expect(directory.totalBytes == -1 && directory.usableBytes == -1, "v\(version): not in the encoding")
                }

                let named = try await connection.request(
                    Self.request([("dirs-a", [1, 7, 1]), ("nope", [0]), ("dirs-b", [-1])]), version: version, expecting: DescribeLogDirsResponse.self)
                #expect(Array(try Self.partitions(named).keys) == ["dirs-a-1"], "v\(version): unknown ones are left out, duplicates once")
                let none = try await connection.request(Self.request([]), version: version, expecting: DescribeLogDirsResponse.self)
                #expect(none.results.first?.topics.isEmpty == true, "v\(version): an empty list names nothing")
                let wide = try await connection.request(
                    Self.request([("dirs-a", (0..<1_000).map { Int32($0) })]), version: version, expecting: DescribeLogDirsResponse.self)
                #expect(Set(try Self.partitions(wide).keys) == ["dirs-a-0", "dirs-a-1"], "v\(version): 1,000 named, 2 held")
            }
            try await connection.close()
        }
    }
}
