import Glibc
import Samsa
import SamsaRecords
public import SamsaStorage

/// The child process of a queue round (`samsa torture-child --queue`): opens the embedded queue
/// (recovering after the last kill), creates topic `q` (2 or 3 partitions) if it is not there, and
/// runs a producer and a consumer-group member side by side until killed, reporting on standard
/// output, one line each, as soon as each happened:
///   `P <partition> <offset> <value>`  a send the producer acknowledged,
///   `D <partition> <offset> <value>`  a record the group member delivered,
///   `C <partition> <offset>`          a commit that returned (the offset after the last delivery).
public enum QueueChild {
    public static let topic = "q"
    public static let group = "g"

    static func topicConfiguration(policy: FlushPolicy, seed: UInt64, round: Int) -> TopicConfiguration {
        var random = TortureRandom(seed: seed, round: round, stream: 5)
        return TopicConfiguration(
            partitions: random.within(2...3), flushPolicy: policy, compression: CompressionCodec.supported[random.below(CompressionCodec.supported.count)],
            maxRecordBytes: 4096, segmentBytes: random.within(16384...131072), writeAheadBytes: [0, 4096][random.below(2)])
    }

    public static func run(directory: String, policy: FlushPolicy, seed: UInt64, round: Int, life: Int) async throws {
        let samsa = try Samsa.open(directory: directory)
        if !samsa.topics.contains(topic) { try samsa.createTopic(topic, topicConfiguration(policy: policy, seed: seed, round: round)) }
        var random = TortureRandom(seed: seed, round: round, stream: 200 + UInt64(life))
        let maxPoll = random.within(1...50)
        let commitEvery = random.within(1...5)
        let producerSeed = random.next()
        let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: random.within(0...5)))
        let consumer = try samsa.consumer(
            group: group, topics: [topic], configuration: ConsumerConfiguration(startPosition: .earliest, maxPollRecords: maxPoll, autoCommit: false))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                var own = TortureRandom(seed: producerSeed)
                for n in 0..<1_000_000 {
                    let value = "L\(life)-\(n)-" + String(repeating: "x", count: own.below(200))
                    let metadata = try await producer.send(ProducerRecord(topic: topic, key: Array("k\(own.below(7))".utf8), value: Array(value.utf8)))
                    printLine("P \(metadata.partition) \(metadata.offset) \(value)")
                }
            }
            tasks.addTask {
                var polls = 0
                var next: [Int: Int64] = [:]
                while true {
                    for record in try await consumer.poll(timeout: .milliseconds(20)) {
                        printLine("D \(record.partition) \(record.offset) \(record.valueString ?? "")")
                        next[record.partition] = record.offset + 1
                    }
                    polls += 1
                    if polls % commitEvery == 0 {
                        try consumer.commit()
                        for (partition, offset) in next.sorted(by: { $0.key < $1.key }) { printLine("C \(partition) \(offset)") }
                    }
                }
            }
            try await tasks.waitForAll()
        }
    }
}

/// One line to standard output at once (the process may be killed right after).
func printLine(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}
