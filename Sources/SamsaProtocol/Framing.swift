public import NIOCore

/// Kafka's framing: every request and response is a 4-byte big-endian size, then a header, then the
/// body. Which header version a message has depends on its API and version (flexible versions use
/// request header v2 and response header v1), except that ApiVersions responses always use header v0
/// so a client can read them before it knows what the broker speaks.
public enum KafkaFraming {
    /// Bytes of the size prefix.
    public static let sizeLength = 4

    /// The request header version for an API's request version: 2 for flexible versions, else 1.
    public static func requestHeaderVersion(apiKey: ApiKey, version: Int16) -> Int16 {
        apiKey.requestType.isFlexible(version) ? 2 : 1
    }

    /// The response header version: 1 for flexible versions, else 0; always 0 for ApiVersions.
    public static func responseHeaderVersion(apiKey: ApiKey, version: Int16) -> Int16 {
        apiKey != .apiVersions && apiKey.responseType.isFlexible(version) ? 1 : 0
    }

    /// A request's header and the undecoded body (a slice of `frame`, which excludes the size prefix).
    /// An unknown API key gets header v1 (its tagged fields, if any, stay in the body).
    public static func decodeRequestHeader(_ frame: ByteBuffer) throws(ProtocolError) -> (header: RequestHeader, body: ByteBuffer) {
        var buffer = frame
        guard let key = buffer.getInteger(at: buffer.readerIndex, as: Int16.self),
            let version = buffer.getInteger(at: buffer.readerIndex + 2, as: Int16.self)
        else { throw ProtocolError("request of \(frame.readableBytes) bytes is too short for a header") }
        let headerVersion = ApiKey(rawValue: key).map { requestHeaderVersion(apiKey: $0, version: version) } ?? 1
        let header = try RequestHeader(from: &buffer, version: headerVersion)
        return (header, buffer)
    }

    /// A whole request frame (size, header, body).
    public static func encodeRequest<Body: KafkaMessage>(
        _ body: Body, version: Int16, correlationId: Int32, clientId: String?, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        var header = RequestHeader()
        header.requestApiKey = Body.apiKey
        header.requestApiVersion = version
        header.correlationId = correlationId
        header.clientId = clientId
        let key = ApiKey(rawValue: Body.apiKey)!
        return frame(allocator: allocator) { buffer in
            header.write(into: &buffer, version: requestHeaderVersion(apiKey: key, version: version))
            body.write(into: &buffer, version: version)
        }
    }

    /// A whole response frame (size, header, body).
    public static func encodeResponse<Body: KafkaMessage>(
        _ body: Body, version: Int16, correlationId: Int32, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        let key = ApiKey(rawValue: Body.apiKey)!
        return frame(allocator: allocator) { buffer in
            var header = ResponseHeader()
            header.correlationId = correlationId
            header.write(into: &buffer, version: responseHeaderVersion(apiKey: key, version: version))
            body.write(into: &buffer, version: version)
        }
    }

    /// Decodes a response frame (without its size prefix) as `Body` at `version`.
    public static func decodeResponse<Body: KafkaMessage>(
        _ frame: ByteBuffer, as type: Body.Type, version: Int16
    ) throws(ProtocolError) -> (correlationId: Int32, body: Body) {
        var buffer = frame
        let key = ApiKey(rawValue: Body.apiKey)!
        let header = try ResponseHeader(from: &buffer, version: responseHeaderVersion(apiKey: key, version: version))
        return (header.correlationId, try Body(decoding: buffer, version: version))
    }

    /// Writes `body`'s bytes after a size prefix that is filled in once they are known.
    public static func frame(allocator: ByteBufferAllocator, _ body: (inout ByteBuffer) -> Void) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 256)
        buffer.writeInteger(Int32(0))
        body(&buffer)
        buffer.setInteger(Int32(buffer.readableBytes - sizeLength), at: buffer.readerIndex)
        return buffer
    }
}
