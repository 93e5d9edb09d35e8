import Samsa
import Testing
import SamsaTestSupport

@Suite("Recreated topics", .offCooperativePool)
struct RecreatedTopicTests {
    @Test("records sent to a topic deleted and created again in one process survive a reopen")
    func recreatedTopicKeepsRecords() async throws {
        let dir = try TemporaryDirectory()
        try await withSamsa(dir) { samsa in
            try samsa.createTopic("t", TopicConfiguration(partitions: 1))
            try await samsa.makeProducer().send(.text("t", "old", partition: 0))
            try samsa.deleteTopic("t")
            try samsa.createTopic("t", TopicConfiguration(partitions: 1))
            try await samsa.makeProducer().send(.text("t", "new", partition: 0))
        }
        try await withSamsa(dir) { samsa in
            let values = try samsa.read(topic: "t", partition: 0, from: 0).map { "\($0.offset):\($0.valueString ?? "")" }
            #expect(values == ["0:new"], "\(values)")
        }
    }
}
