import NIOCore
import SamsaProtocol

extension RequestDispatcher {
    func apiVersions(_ request: ApiVersionsRequest) -> ApiVersionsResponse {
        var response = ApiVersionsResponse()
        response.apiKeys = SupportedApis.advertised
        return response
    }

    /// A version newer than the broker's: error 35 with the supported versions, in the v0 layout,
    /// which every client can read (Kafka does the same; clients then retry with a version it has).
    func apiVersionsTooNew(correlationId: Int32) -> ByteBuffer {
        var response = ApiVersionsResponse()
        response.errorCode = ErrorCode.unsupportedVersion.rawValue
        response.apiKeys = SupportedApis.advertised
        return KafkaFraming.encodeResponse(response, version: 0, correlationId: correlationId)
    }
}
