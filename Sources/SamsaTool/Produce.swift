import ArgumentParser
import Glibc
import Samsa
import Synchronization

/// `samsa produce --dir DIR --topic T`: one record per line of standard input.
struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send one record per line of standard input to a topic.",
        discussion: """
            Each line is a record's value, or with --key-separator its key, the separator and its value. \
            Exits once every line is acknowledged under the topic's flush policy. With --acks-json, prints \
            {"line":N,"partition":P,"offset":O} for each line (N counts from 1) as soon as it is acknowledged.
            """
    )

    @Option(help: "Data directory.")
    var dir: String
    @Option(help: "Topic name.")
    var topic: String
    @Option(help: "Split each line at the first occurrence of this string into key and value.")
    var keySeparator: String?
    @Option(help: "Send every record to this partition (default: by key, or sticky without keys).")
    var partition: Int?
    @Flag(help: "Print one JSON line per acknowledged record.")
    var acksJson = false
    @Option(help: "Milliseconds a batch waits for more lines.")
    var lingerMs = 5

    func validate() throws {
        if let keySeparator, keySeparator.isEmpty { throw ValidationError("--key-separator must not be empty") }
        guard lingerMs >= 0 else { throw ValidationError("--linger-ms must not be negative") }
    }

    func run() async throws {
        let samsa = try openExisting(dir)
        defer { try? samsa.close() }
        _ = try samsa.describeTopic(topic)
        let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: lingerMs))
        let failures = Mutex<[String]>([])
        var number = 0
        for await line in StandardInputLines() {
            number += 1
            var key: String?
            var value = line
            if let keySeparator {
                guard let range = line.range(of: keySeparator) else {
                    await producer.close()
                    throw ValidationError("line \(number) has no key separator '\(keySeparator)'")
                }
                key = String(line[..<range.lowerBound])
                value = String(line[range.upperBound...])
            }
            let delivery = try await producer.enqueue(ProducerRecord(topic: topic, partition: partition, key: key, value: value))
            let lineNumber = number
            let printAcks = acksJson
            delivery.whenResolved { outcome in
                switch outcome {
                case .success(let metadata):
                    if printAcks {
                        // One write per line: a reader (or a parent killing us) sees every ack printed.
                        writeLine(#"{"line":\#(lineNumber),"partition":\#(metadata.partition),"offset":\#(metadata.offset)}"#)
                    }
                case .failure(let error):
                    failures.withLock { $0.append("line \(lineNumber): \(error)") }
                }
            }
        }
        await producer.close()
        try samsa.close()
        let failed = failures.withLock { $0 }
        if !failed.isEmpty {
            for failure in failed.prefix(10) { standardError("samsa produce: \(failure)") }
            standardError("samsa produce: \(failed.count) of \(number) records failed")
            throw ExitCode(1)
        }
    }
}

/// Writes `text` and a newline to standard output with one write(2), unbuffered.
func writeLine(_ text: String) {
    var line = text
    line += "\n"
    line.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                break
            }
            offset += n
        }
    }
}
