import Foundation
import SamsaProtocol
import SamsaStorage

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
