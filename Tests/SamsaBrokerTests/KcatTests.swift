import Foundation
import NIOCore
import SamsaRecords
import Testing
@testable import SamsaBroker

/// kcat 1.7.1 on Debian's librdkafka 2.0.2 (installed by scripts/test.sh): it checks single versions
/// (Produce 3, Fetch 4, ListOffsets 1), so this also tests the advertised minimums.
@Suite("Broker with kcat")
struct KcatTests {
    @Test("kcat produces lines and consumes them back", arguments: ["none", "lz4", "zstd"])
    func produceThenConsume(compression: String) async throws {
        try await TestBroker.with(autoCreateTopics: true, flushPolicy: .everyAppend) { broker in
            let bootstrap = "127.0.0.1:\(broker.port)"
            let topic = "kcat-\(compression)"
            let lines = (0..<100).map { "line-\($0)" }
            _ = try await ClientProcess.run(
                // One batch of all lines: librdkafka sends a batch uncompressed when compressing would not
                // shrink it, which a first batch of a line or two (a slow machine, a sanitizer build) is.
                ["kcat", "-b", bootstrap, "-P", "-t", topic, "-p", "0", "-z", compression, "-X", "acks=all", "-X", "linger.ms=1000"],
                input: Data(lines.joined(separator: "\n").appending("\n").utf8))
            // librdkafka 2.0.2 silently skips a codec whose feature check fails (lz4 needs FindCoordinator 0).
            let stored = try #require(try broker.broker.dispatcher.topics.log(topic, 0)?.read(from: 0, maxBytes: 1 << 20))
            #expect(try RecordBatch(validating: stored).compression.description == compression)
            let output = try await ClientProcess.run(
                ["kcat", "-b", bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "100", "-e", "-f", "%o %s\\n"])
            let consumed = String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
            #expect(consumed == lines.enumerated().map { "\($0.offset) \($0.element)" })
        }
    }
}
