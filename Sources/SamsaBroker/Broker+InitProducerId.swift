import SamsaProtocol

extension RequestDispatcher {
    /// A new producer id (epoch 0) for an idempotent producer, or the same id with the next epoch when
    /// the producer asks to bump its own (KIP-360). Transactions are not supported.
    func initProducerId(_ request: InitProducerIdRequest) async -> InitProducerIdResponse {
        var response = InitProducerIdResponse()
        guard request.transactionalId == nil else {
            response.errorCode = ErrorCode.transactionalIdAuthorizationFailed.rawValue
            return response
        }
        if request.producerId >= 0 && request.producerEpoch >= 0 && request.producerEpoch < Int16.max - 1 {
            response.producerId = request.producerId
            response.producerEpoch = request.producerEpoch + 1
            return response
        }
        do {
            let allocator = producerIds
            if let cluster {
                // Unique across the cluster's brokers, not only this one's restarts.
                response.producerId = try await cluster.producerIds.allocate()
            } else {
                response.producerId = try await onIOThread { try allocator.next() }
            }
            response.producerEpoch = 0
        } catch {
            configuration.log("allocating a producer id failed: \(error)")
            response.errorCode = ErrorCode.kafkaStorageError.rawValue
        }
        return response
    }
}
