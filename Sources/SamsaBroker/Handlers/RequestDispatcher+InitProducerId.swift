import SamsaProtocol

extension RequestDispatcher {
    /// A new producer id (epoch 0) for an idempotent producer. Kafka's coordinator answers every
    /// InitProducerId without a transactional id so, whatever producer id and epoch it names (v3+,
    /// KIP-360): an idempotent producer bumps its epoch itself, and one asking the broker to bump an
    /// id gets a fresh one, so no client can take over or age another producer's id. Transactions are
    /// not supported.
    func initProducerId(_ request: InitProducerIdRequest) async -> InitProducerIdResponse {
        var response = InitProducerIdResponse()
        guard request.transactionalId == nil else {
            response.errorCode = ErrorCode.transactionalIdAuthorizationFailed.rawValue
            return response
        }
        do {
            response.producerId = try await producerIds.allocate()
            response.producerEpoch = 0
        } catch {
            configuration.logger.error("allocating a producer id failed", metadata: ["error": "\(error)"])
            response.errorCode = ErrorCode.kafkaStorageError.rawValue
        }
        return response
    }
}
