import NIOCore
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// How the broker answers requests it does not serve, and what it does with bytes that are not requests.
@Suite("Broker protocol edges")
struct ProtocolEdgeTests {
    @Test("ApiVersions v0 and v3 list the supported APIs")
    func apiVersions() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            for version: Int16 in [0, 3] {
                let response = try await connection.request(ApiVersionsRequest(), version: version, expecting: ApiVersionsResponse.self)
                #expect(response.errorCode == 0)
                let produce = try #require(response.apiKeys.first { $0.apiKey == ApiKey.produce.rawValue })
                #expect(produce.minVersion == 0 && produce.maxVersion == 9)
                #expect(response.apiKeys.count == SupportedApis.versions.count)
            }
            try await connection.close()
        }
    }

    @Test("A too-new ApiVersions gets error 35 in the v0 layout")
    func apiVersionsTooNew() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            try await connection.send(KafkaFraming.encodeRequest(ApiVersionsRequest(), version: 4, correlationId: 9, clientId: "t"))
            let frame = try #require(try await connection.receive())
            // Header v0 and body v0, whatever version was asked for.
            let (id, body) = try KafkaFraming.decodeResponse(frame, as: ApiVersionsResponse.self, version: 0)
            #expect(id == 9)
            #expect(body.errorCode == ErrorCode.unsupportedVersion.rawValue)
            #expect(body.apiKeys.contains { $0.apiKey == ApiKey.apiVersions.rawValue && $0.maxVersion == 3 })
            try await connection.close()
        }
    }

    @Test("An unknown API key gets UNSUPPORTED_VERSION and the connection stays usable")
    func unknownApiKey() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            var frame = ByteBuffer()
            frame.writeInteger(Int32(10))
            frame.writeInteger(Int16(999))  // no such API
            frame.writeInteger(Int16(0))
            frame.writeInteger(Int32(5))
            frame.writeInteger(Int16(-1))  // null client id
            try await connection.send(frame)
            var response = try #require(try await connection.receive())
            #expect(response.readInteger(as: Int32.self) == 5)
            #expect(response.readInteger(as: Int16.self) == ErrorCode.unsupportedVersion.rawValue)
            let versions = try await connection.request(ApiVersionsRequest(), version: 0, expecting: ApiVersionsResponse.self, correlationId: 6)
            #expect(versions.errorCode == 0)
            try await connection.close()
        }
    }

    @Test("Garbage closes that connection only")
    func garbageClosesOneConnection() async throws {
        try await TestBroker.with { broker in
            let bad = try await TestConnection(port: broker.port)
            let good = try await TestConnection(port: broker.port)
            // A frame whose Metadata body claims an array longer than the bytes present.
            var frame = ByteBuffer()
            frame.writeInteger(Int32(14))
            frame.writeInteger(ApiKey.metadata.rawValue)
            frame.writeInteger(Int16(4))
            frame.writeInteger(Int32(1))
            frame.writeInteger(Int16(-1))
            frame.writeInteger(Int32(1_000_000))
            try await bad.send(frame)
            #expect(try await bad.receive() == nil)
            let response = try await good.request(ApiVersionsRequest(), version: 0, expecting: ApiVersionsResponse.self)
            #expect(response.errorCode == 0)
            try await bad.close()
            try await good.close()
        }
    }

    @Test("A request larger than the limit closes its connection")
    func oversizedRequest() async throws {
        let broker = try await TestBroker.start(maxRequestBytes: 1024)
        let connection = try await TestConnection(port: broker.port)
        var frame = ByteBuffer()
        frame.writeInteger(Int32(1 << 20))
        try await connection.send(frame)
        #expect(try await connection.receive() == nil)
        try await connection.close()
        try await broker.stop()
    }

    @Test("A client that disconnects mid-request leaves the broker serving others")
    func disconnectMidRequest() async throws {
        try await TestBroker.with { broker in
            let leaving = try await TestConnection(port: broker.port)
            var partial = KafkaFraming.encodeRequest(ApiVersionsRequest(), version: 3, correlationId: 1, clientId: "gone")
            partial.moveWriterIndex(to: partial.writerIndex - 3)
            try await leaving.send(partial)
            try await leaving.close()
            let staying = try await TestConnection(port: broker.port)
            let response = try await staying.request(ApiVersionsRequest(), version: 3, expecting: ApiVersionsResponse.self)
            #expect(response.errorCode == 0)
            try await staying.close()
        }
    }
}
