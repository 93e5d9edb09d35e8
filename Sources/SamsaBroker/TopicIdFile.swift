import Foundation
import SamsaProtocol
import SamsaStorage

/// Each topic's id (KIP-516), durable in `<data>/topic-ids.json`: name → id in Kafka's text form
/// (URL-safe base64 of the 16 bytes, unpadded). One file for the data directory rather than Kafka's
/// `partition.metadata` in each partition directory, because a partition directory's deletion removes
/// only the files the log writes there; it is written before a topic's logs are made, so a topic's
/// logs never exist without its id. Written atomically (temp file, fsync, rename).
enum TopicIdFile {
    static let name = "topic-ids.json"

    static func read(dataDirectory: String, files: any FileSystem = PosixFileSystem()) throws -> [String: KafkaUUID] {
        let path = "\(dataDirectory)/\(name)"
        guard files.fileExists(path) else { return [:] }
        let stored = try JSONDecoder().decode([String: String].self, from: Data(try files.readFile(path)))
        return stored.compactMapValues(KafkaUUID.init(text:))
    }

    static func write(_ ids: [String: KafkaUUID], dataDirectory: String, files: any FileSystem = PosixFileSystem()) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try files.writeFileAtomically("\(dataDirectory)/\(name)", Array(try encoder.encode(ids.mapValues(\.text))))
    }
}

extension KafkaUUID {
    /// Kafka's `Uuid.toString`: URL-safe base64 of the 16 bytes, without padding (22 characters).
    var text: String {
        let bytes = (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) } + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Kafka's `Uuid.fromString`; nil for anything that is not 16 bytes in that form.
    init?(text: String) {
        guard text.utf8.count == 22 else { return nil }
        let standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "=="
        guard let data = Data(base64Encoded: standard), data.count == 16 else { return nil }
        let bytes = Array(data)
        self.init(
            high: bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, low: bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) })
    }
}
