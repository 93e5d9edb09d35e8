import NIOCore
import SamsaProtocol

/// The topics in a member's subscription, read from its JoinGroup metadata in the consumer protocol
/// (an int16 version, then `ConsumerProtocolSubscription` at that version), as Kafka's coordinator
/// reads them to refuse OffsetDelete of a topic the group consumes.
enum ConsumerSubscription {
    /// The protocol type of groups of consumers (`ConsumerProtocol.PROTOCOL_TYPE`).
    static let protocolType = "consumer"

    /// The subscribed topics; nil when the metadata does not read as a subscription (Kafka then takes
    /// the group as subscribed to every topic). A version past the last known one reads as that one
    /// (fields are only ever appended).
    static func topics(_ metadata: ByteBuffer) -> Set<String>? {
        var bytes = metadata
        guard let version = bytes.readInteger(as: Int16.self), version >= 0 else { return nil }
        let known = min(version, ConsumerProtocolSubscription.validVersions.upperBound)
        guard let subscription = try? ConsumerProtocolSubscription(from: &bytes, version: known) else { return nil }
        return Set(subscription.topics)
    }
}
