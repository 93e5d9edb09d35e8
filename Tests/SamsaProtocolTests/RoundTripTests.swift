import NIOCore
import SamsaProtocol
import Testing
import SamsaTestSupport

/// Every generated codec, at every version it defines: the sample (every field non-default) encodes,
/// decodes and encodes again to the same bytes; every strict prefix of the encoding fails to decode.
@Suite("Protocol round trips", .offCooperativePool)
struct RoundTripTests {
    static let messages: [any KafkaSchema.Type] = ApiKey.allCases.flatMap { [$0.requestType, $0.responseType] as [any KafkaSchema.Type] }
        + [RequestHeader.self, ResponseHeader.self, ConsumerProtocolSubscription.self, ConsumerProtocolAssignment.self]

    @Test("Sample survives encode, decode, encode at every version", arguments: messages.map(TypeBox.init))
    func sampleRoundTrips(type: TypeBox) throws {
        try roundTrip(type.type)
    }

    @Test("Every strict prefix of an encoding fails to decode", arguments: messages.map(TypeBox.init))
    func prefixesThrow(type: TypeBox) {
        prefixes(type.type)
    }

    @Test("Defaults round trip at every version", arguments: messages.map(TypeBox.init))
    func defaultsRoundTrip(type: TypeBox) throws {
        try defaults(type.type)
    }

    private func roundTrip<Message: KafkaSchema>(_ type: Message.Type) throws {
        for version in Message.validVersions {
            let bytes = sample(type).encoded(version: version)
            let decoded = try Message(decoding: bytes, version: version)
            #expect(decoded.encoded(version: version) == bytes, "\(Message.self) v\(version)")
        }
    }

    private func prefixes<Message: KafkaSchema>(_ type: Message.Type) {
        for version in Message.validVersions {
            let bytes = sample(type).encoded(version: version)
            for length in 0..<bytes.readableBytes {
                #expect(throws: ProtocolError.self, "\(Message.self) v\(version) prefix \(length)") {
                    try Message(decoding: bytes.getSlice(at: bytes.readerIndex, length: length)!, version: version)
                }
            }
        }
    }

    private func defaults<Message: KafkaSchema>(_ type: Message.Type) throws {
        for version in Message.validVersions {
            let bytes = Message().encoded(version: version)
            #expect(try Message(decoding: bytes, version: version) == Message(), "\(Message.self) v\(version)")
        }
    }

    private func sample<Message: KafkaSchema>(_ type: Message.Type) -> Message {
        (type as! any Sampled.Type).sampleValue as! Message
    }
}

/// Lets a metatype be a test argument.
struct TypeBox: Sendable, CustomStringConvertible {
    let type: any KafkaSchema.Type
    var description: String { "\(type)" }
}

/// The generated samples, reachable through a metatype.
protocol Sampled {
    static var sampleValue: Any { get }
}
