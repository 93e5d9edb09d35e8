import Foundation
import Samsa
import SamsaTestSupport

extension ProducerRecord {
    static func text(_ topic: String, _ value: String, key: String? = nil, partition: Int? = nil) -> ProducerRecord {
        ProducerRecord(topic: topic, partition: partition, key: key, value: value)
    }
}

/// Runs `body` with Samsa open on `directory`, closing it afterwards whatever happens.
func withSamsa<T>(_ directory: TemporaryDirectory, _ body: (Samsa) async throws -> T) async throws -> T {
    let samsa = try Samsa.open(directory: directory.path)
    do {
        let result = try await body(samsa)
        try samsa.close()
        return result
    } catch {
        try? samsa.close()
        throw error
    }
}
