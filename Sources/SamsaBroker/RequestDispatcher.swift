import NIOCore
import NIOPosix
import SamsaProtocol
import SamsaStorage

/// Decodes one request frame, runs its API's handler and encodes the response (Kafka's `KafkaApis`).
/// Handlers are in one file per API (`Broker+Produce.swift`, ...). Blocking file work goes to the I/O
/// thread pool; nothing here blocks the caller's thread.
final class RequestDispatcher: Sendable {
    let configuration: BrokerConfiguration
    let logs: LogManager
    let topics: TopicTable
    let notifier = AppendNotifier()
    let io: NIOThreadPool
    /// Host and port that Metadata advertises.
    let advertised: (host: String, port: Int32)

    init(configuration: BrokerConfiguration, logs: LogManager, io: NIOThreadPool, advertised: (host: String, port: Int32)) {
        self.configuration = configuration
        self.logs = logs
        self.topics = TopicTable(logs: logs)
        self.io = io
        self.advertised = advertised
    }

    /// The response frame for a request frame (without its size prefix), or nil when the request
    /// expects none (Produce with acks 0). Throws `ProtocolError` for bytes that do not decode: the
    /// connection is then closed.
    func respond(to frame: ByteBuffer) async throws -> ByteBuffer? {
        let (header, body) = try KafkaFraming.decodeRequestHeader(frame)
        let version = header.requestApiVersion
        guard let key = ApiKey(rawValue: header.requestApiKey), let supported = SupportedApis.versions[key] else {
            return Self.unsupported(correlationId: header.correlationId)
        }
        guard supported.contains(version) else {
            if key == .apiVersions { return apiVersionsTooNew(correlationId: header.correlationId) }
            return Self.unsupported(correlationId: header.correlationId)
        }
        let id = header.correlationId
        switch key {
        case .apiVersions:
            return encode(apiVersions(try ApiVersionsRequest(decoding: body, version: version)), version, id)
        case .metadata:
            return encode(await metadata(try MetadataRequest(decoding: body, version: version), version: version), version, id)
        case .produce:
            let request = try ProduceRequest(decoding: body, version: version)
            let response = await produce(request)
            return request.acks == 0 ? nil : encode(response, version, id)
        case .fetch:
            return encode(await fetch(try FetchRequest(decoding: body, version: version), version: version), version, id)
        case .listOffsets:
            return encode(await listOffsets(try ListOffsetsRequest(decoding: body, version: version)), version, id)
        case .createTopics:
            return encode(await createTopics(try CreateTopicsRequest(decoding: body, version: version)), version, id)
        default:
            return Self.unsupported(correlationId: id)
        }
    }

    private func encode<Response: KafkaMessage>(_ response: Response, _ version: Int16, _ correlationId: Int32) -> ByteBuffer {
        KafkaFraming.encodeResponse(response, version: version, correlationId: correlationId)
    }

    /// For an API (or version) the broker does not serve: header v0 and the error code
    /// UNSUPPORTED_VERSION, which is how most response bodies start.
    static func unsupported(correlationId: Int32) -> ByteBuffer {
        KafkaFraming.frame(allocator: ByteBufferAllocator()) { buffer in
            buffer.writeInteger(correlationId)
            buffer.writeInteger(ErrorCode.unsupportedVersion.rawValue)
        }
    }

    /// Runs blocking file work on the I/O pool.
    func onIOThread<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await io.runIfActive(body)
    }
}
