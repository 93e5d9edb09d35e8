import Foundation
import Samsa
import SamsaRecords
import Testing
import SamsaTestSupport

// The README's embedding example, compiled and run as a test: keep the two identical.
// README-EXAMPLE-BEGIN
func embeddingExample(directory: String) async throws -> [String] {
    let samsa = try Samsa.open(directory: directory)
    defer { try? samsa.close() }
    if !samsa.topics.contains("orders") {
        try samsa.createTopic("orders", TopicConfiguration(partitions: 4, flushPolicy: .everyAppend, compression: .lz4))
    }

    // Producing: each send returns once its record is on disk (the topic's flush policy).
    let producer = samsa.makeProducer()
    let receipt = try await producer.send(ProducerRecord(topic: "orders", key: "customer-42", value: #"{"item":"book","qty":1}"#))
    print("stored at partition \(receipt.partition), offset \(receipt.offset)")
    await producer.close()

    // Consuming as a group: partitions are shared among members; offsets are committed durably,
    // so a restarted app resumes where it left off.
    let consumer = try samsa.consumer(group: "billing", topics: ["orders"], configuration: ConsumerConfiguration(startPosition: .earliest))
    var seen: [String] = []
    for try await record in consumer.records {
        seen.append(record.valueString ?? "")
        if seen.count == 1 { break }
    }
    try consumer.commit()
    try consumer.close()
    return seen
}
// README-EXAMPLE-END

@Suite("README example", .offCooperativePool)
struct EmbeddingExampleTests {
    @Test("the embedding example runs, and a second run resumes after the committed record")
    func example() async throws {
        let dir = try TemporaryDirectory()
        #expect(try await embeddingExample(directory: dir.path) == [#"{"item":"book","qty":1}"#])
        // Second run: one more record; the group resumes after the first.
        #expect(try await embeddingExample(directory: dir.path) == [#"{"item":"book","qty":1}"#])
        let samsa = try Samsa.open(directory: dir.path)
        defer { try? samsa.close() }
        let partition = Murmur2.partition(forKey: Array("customer-42".utf8), partitions: 4)
        #expect(try samsa.committedOffset(group: "billing", topic: "orders", partition: partition) == 2)
    }

    @Test("README.md quotes the example exactly")
    func readmeQuotesExample() throws {
        let source = try String(contentsOfFile: #filePath, encoding: .utf8)
        let readme = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../README.md").path, encoding: .utf8)
        let begin = source.range(of: "// README-EXAMPLE-BEGIN\n")!, end = source.range(of: "// README-EXAMPLE-END")!
        let example = String(source[begin.upperBound..<end.lowerBound])
        #expect(readme.contains(example), "README.md must contain the example between the markers in \(#filePath)")
    }
}
