import NIOCore
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// Metadata as real tools ask for it first: all topics, at every version the broker serves, including
/// the malformed-but-accepted body librdkafka 2.3 to 2.16 send (issue 19), and bytes after any request's
/// last field, which Kafka ignores.
@Suite("Metadata for all topics, every version, and bytes after a request")
struct MetadataRequestTests {
    static let names = ["alpha", "beta", "gamma"]

    /// A broker with three topics (1, 2 and 3 partitions) and a connection to it.
    static func withTopics(_ body: (TestBroker, TestConnection) async throws -> Void) async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            for (index, name) in names.enumerated() {
                #expect(try await ProduceFetchTests.createTopic(name, partitions: Int32(index + 1), on: connection).errorCode == 0)
            }
            try await body(broker, connection)
            try await connection.close()
        }
    }

    /// A raw request frame: header v1 (v2 when flexible) and `body` as given.
    static func frame(version: Int16, correlationId: Int32, body: [UInt8]) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeInteger(ApiKey.metadata.rawValue)
        payload.writeInteger(version)
        payload.writeInteger(correlationId)
        payload.writeInteger(Int16(9))
        payload.writeString("rdkafka-x")
        if MetadataRequest.isFlexible(version) { payload.writeInteger(UInt8(0)) }  // header tagged fields
        payload.writeBytes(body)
        var frame = ByteBuffer()
        frame.writeInteger(Int32(payload.readableBytes))
        frame.writeBuffer(&payload)
        return frame
    }

    @Test("All topics at every Metadata version: null topics (an empty array in v0) lists each topic with its partitions")
    func allTopicsEveryVersion() async throws {
        try await Self.withTopics { _, connection in
            for version in try #require(SupportedApis.versions[.metadata]) {
                var request = MetadataRequest()
                request.topics = version == 0 ? [] : nil
                let response = try await connection.request(request, version: version, expecting: MetadataResponse.self, correlationId: Int32(version) + 10)
                #expect(response.topics.compactMap(\.name).sorted() == Self.names, "v\(version)")
                #expect(response.topics.map(\.partitions.count).sorted() == [1, 2, 3], "v\(version)")
                #expect(response.brokers.count == 1, "v\(version)")
            }
        }
    }

    @Test("An empty topic list from v1 on asks for no topics; named, duplicated and unknown names are answered")
    func emptyNamedDuplicated() async throws {
        try await Self.withTopics { _, connection in
            for version in try #require(SupportedApis.versions[.metadata]) where version >= 1 {
                var request = MetadataRequest()
                request.topics = []
                let none = try await connection.request(request, version: version, expecting: MetadataResponse.self)
                #expect(none.topics.isEmpty, "v\(version)")
                var named = MetadataRequest.MetadataRequestTopic()
                named.name = "beta"
                var unknown = MetadataRequest.MetadataRequestTopic()
                unknown.name = "nope"
                request.topics = [named, named, unknown]
                let answered = try await connection.request(request, version: version, expecting: MetadataResponse.self)
                #expect(Set(answered.topics.map(\.name)) == ["beta", "nope"], "v\(version)")
                #expect(answered.topics.first { $0.name == "beta" }?.errorCode == 0)
                #expect(answered.topics.first { $0.name == "nope" }?.errorCode == ErrorCode.unknownTopicOrPartition.rawValue)
            }
        }
    }

    @Test(
        "librdkafka 2.3-2.16's all-topics Metadata (a 4-byte null count) is read as Kafka reads it, and the connection stays open",
        arguments: [Int16(9), 10, 11, 12])
    func librdkafkaAllTopics(version: Int16) async throws {
        try await Self.withTopics { broker, connection in
            // As captured from librdkafka 2.16 at v12: the topic count reserved as an int32 and left as
            // zero bytes (a varint null and three zeros), then allow-auto-creation and the rest.
            let body: [UInt8] = version <= 10 ? [0, 0, 0, 0, 1, 0, 0, 0] : [0, 0, 0, 0, 1, 0, 0]
            try await connection.send(Self.frame(version: version, correlationId: 77, body: body))
            let frame = try #require(try await connection.receive(), "the broker closed the connection")
            let (id, response) = try KafkaFraming.decodeResponse(frame, as: MetadataResponse.self, version: version)
            #expect(id == 77)
            #expect(response.topics.compactMap(\.name).sorted() == Self.names)
            // The connection still serves requests.
            let after = try await connection.request(ApiVersionsRequest(), version: 3, expecting: ApiVersionsResponse.self, correlationId: 78)
            #expect(after.errorCode == 0)
            let metrics = broker.broker.metricsText()
            #expect(metrics.contains(#"samsa_requests_with_trailing_bytes_total{request="Metadata"} 1"#), "\(metrics)")
        }
    }

    @Test("Bytes after the last field of any request are ignored, as Kafka ignores them")
    func trailingBytesIgnored() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            for (index, version) in try #require(SupportedApis.versions[.apiVersions]).enumerated() {
                var request = ApiVersionsRequest()
                request.clientSoftwareName = "trailing"
                request.clientSoftwareVersion = "1"
                var frame = KafkaFraming.encodeRequest(request, version: version, correlationId: Int32(index), clientId: "t")
                // Five bytes more, and the size prefix grown to cover them.
                frame.writeBytes([1, 2, 3, 4, 5])
                frame.setInteger(Int32(frame.readableBytes - 4), at: frame.readerIndex)
                try await connection.send(frame)
                let reply = try #require(try await connection.receive(), "v\(version): the broker closed the connection")
                let (id, response) = try KafkaFraming.decodeResponse(reply, as: ApiVersionsResponse.self, version: version)
                #expect(id == Int32(index))
                #expect(response.errorCode == 0)
            }
            try await connection.close()
        }
    }

    @Test("A Metadata request naming 1,000 unknown topics (and a 32 KB name) is answered topic by topic")
    func manyAndLongNames() async throws {
        try await Self.withTopics { _, connection in
            var request = MetadataRequest()
            request.topics = (0..<1_000).map { index in
                var topic = MetadataRequest.MetadataRequestTopic()
                topic.name = "unknown-\(index)"
                return topic
            }
            var long = MetadataRequest.MetadataRequestTopic()
            long.name = String(repeating: "x", count: 32_767)
            request.topics?.append(long)
            for version: Int16 in [1, 8, 12] {
                let response = try await connection.request(request, version: version, expecting: MetadataResponse.self)
                #expect(response.topics.count == 1_001, "v\(version)")
                #expect(response.topics.prefix(1_000).allSatisfy { $0.errorCode == ErrorCode.unknownTopicOrPartition.rawValue })
                #expect(response.topics.last?.errorCode == ErrorCode.invalidTopic.rawValue)
            }
        }
    }
}
