import SamsaProtocol

extension RequestDispatcher {
    /// The live brokers and the controller, as Metadata shows them (KIP-700: what Kafka's AdminClient
    /// asks first). Only the broker endpoints exist here: asking for controllers (KRaft's endpoint type
    /// 2) is UNSUPPORTED_ENDPOINT_TYPE, as Kafka answers a broker that is not a controller.
    func describeCluster(_ request: DescribeClusterRequest) async -> DescribeClusterResponse {
        var response = DescribeClusterResponse()
        response.clusterId = "samsa"
        response.endpointType = request.endpointType
        guard request.endpointType == 1 else {
            response.errorCode = ErrorCode.unsupportedEndpointType.rawValue
            response.errorMessage = "endpoint type \(request.endpointType) is not served: only brokers (1)"
            return response
        }
        do {
            let live = try await catalog.liveBrokers()
            response.brokers = live.sorted { $0.key < $1.key }.map { id, registration in
                var broker = DescribeClusterResponse.DescribeClusterBroker()
                broker.brokerId = id.rawValue
                broker.host = registration.host
                broker.port = registration.port
                return broker
            }
        } catch {
            configuration.logger.warning("describe cluster: reading the live brokers failed", metadata: ["error": "\(error)"])
            response.errorCode = ErrorCode.coordinatorNotAvailable.rawValue
            response.errorMessage = "the cluster's brokers cannot be read now"
            return response
        }
        response.controllerId = await catalog.controller()?.rawValue ?? -1
        return response
    }
}
