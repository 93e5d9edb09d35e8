import Foundation
import Samsa

/// A temporary data directory removed when the test ends.
final class TemporaryDirectory {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-queue-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

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
