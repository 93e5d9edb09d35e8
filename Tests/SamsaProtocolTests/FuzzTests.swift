import NIOCore
import SamsaProtocol
import Testing
import SamsaTestSupport

/// Damaged bytes decode or throw `ProtocolError`; they never trap, whatever the message and version.
@Suite("Protocol decoder fuzzing", .offCooperativePool)
struct FuzzTests {
    @Test("Mutated samples of every request never trap", arguments: ApiKey.allCases)
    func mutatedRequests(key: ApiKey) {
        var generator = SplitMix(seed: UInt64(key.rawValue) &+ 0x5eed)
        fuzz(key.requestType, generator: &generator)
        fuzz(key.responseType, generator: &generator)
    }

    private func fuzz<Message: KafkaSchema>(_ type: Message.Type, generator: inout SplitMix) {
        let sample = (type as! any Sampled.Type).sampleValue as! Message
        for version in Message.validVersions {
            let original = sample.encoded(version: version)
            for _ in 0..<200 {
                var bytes = original
                let flips = Int(generator.next() % 4) + 1
                for _ in 0..<flips where bytes.readableBytes > 0 {
                    let position = bytes.readerIndex + Int(generator.next() % UInt64(bytes.readableBytes))
                    bytes.setInteger(UInt8(truncatingIfNeeded: generator.next()), at: position)
                }
                // Either outcome is fine; a trap fails the whole run.
                _ = try? Message(decoding: bytes, version: version)
            }
        }
    }
}

/// A small seeded generator, so a failure replays.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
