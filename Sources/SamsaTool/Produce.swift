import ArgumentParser
import Glibc
import Samsa
import Synchronization

/// `samsa produce --dir DIR --topic T`: one record per line of standard input.
struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send one record per line of standard input to a topic.",
        discussion: """
            Each line is a record's value, or with --key-separator its key, the separator and its value; \
            the bytes are stored as read (only the newline is removed). Exits once every line is \
            acknowledged under the topic's flush policy. With --acks-json, prints \
            {"line":N,"partition":P,"offset":O} for each line (N counts from 1) as soon as it is \
            acknowledged. A line that cannot be sent (too large, no key separator) stops the command: \
            the lines before it are acknowledged, the directory is closed, and it exits 1. ^C or SIGTERM \
            stops reading, waits for what was sent, closes cleanly and exits 130 or 143. One process at a \
            time writes a directory (it holds <dir>/.lock); consumers, with or without --group, run beside it.
            """
    )

    @Option(help: "Data directory.")
    var dir: String
    @Option(help: "Topic name.")
    var topic: String
    @Option(help: "Split each line at the first occurrence of these bytes into key and value.")
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

    /// A line that cannot become a record.
    struct LineError: Error, CustomStringConvertible {
        let description: String
    }

    func run() async throws {
        let stop = StopSignals()
        ignoreBrokenPipes()
        let samsa = try openExisting(dir)
        defer { try? samsa.close() }
        _ = try samsa.describeTopic(topic)
        let producer = samsa.makeProducer(ProducerConfiguration(lingerMilliseconds: lingerMs))
        let tally = AckTally()
        let (topic, partition, printAcks) = (self.topic, self.partition, acksJson)
        let separator = keySeparator.map { Array($0.utf8) }
        let reading = Task { () -> (lines: Int, failure: String?) in
            var number = 0
            do {
                for try await line in StandardInputLines() {
                    number += 1
                    var key: [UInt8]?
                    var value = line
                    if let separator {
                        guard let range = line.firstRange(of: separator) else {
                            throw LineError(description: "line \(number) has no key separator '\(String(decoding: separator, as: UTF8.self))'")
                        }
                        key = Array(line[..<range.lowerBound])
                        value = Array(line[range.upperBound...])
                    }
                    let delivery = try await producer.enqueue(ProducerRecord(topic: topic, partition: partition, key: key, value: value))
                    let lineNumber = number
                    delivery.whenResolved { outcome in tally.resolved(line: lineNumber, outcome, printing: printAcks) }
                    if tally.outputFailed { break }
                }
            } catch is CancellationError {
            } catch let error as LineError {
                return (number, error.description)
            } catch let error as StandardInputLines.ReadError {
                return (number, error.description)
            } catch {
                return (number, "line \(number): \(error)")
            }
            return (number, nil)
        }
        stop.whenStopped { reading.cancel() }
        tally.onOutputFailure { reading.cancel() }
        let (lines, failure) = await reading.value
        // Everything handed over is written and resolved (its ack printed) before the directory closes.
        await producer.close()
        try samsa.close()
        let summary = tally.summary
        var failed = false
        if let failure {
            standardError("samsa produce: \(failure)")
            failed = true
        }
        for problem in summary.failures.prefix(10) { standardError("samsa produce: \(problem)") }
        if !summary.failures.isEmpty {
            standardError("samsa produce: \(summary.failures.count) records failed")
            failed = true
        }
        if let outputError = summary.outputError {
            standardError("samsa produce: cannot write acknowledgements: \(String(cString: strerror(outputError)))")
            failed = true
        }
        if failed || stop.signal != nil {
            standardError("samsa produce: \(summary.acknowledged) of \(lines) lines acknowledged")
        }
        if let status = stop.exitStatus, !failed { throw ExitCode(status) }
        if failed { throw ExitCode(1) }
    }
}

/// What became of the records sent, from the threads that resolve them.
final class AckTally: Sendable {
    struct Summary {
        var acknowledged = 0
        var failures: [String] = []
        var outputError: Int32?
    }

    private let state = Mutex(Summary())
    private let failureHook = Mutex<(@Sendable () -> Void)?>(nil)

    func onOutputFailure(_ body: @escaping @Sendable () -> Void) {
        failureHook.withLock { $0 = body }
        if outputFailed { body() }
    }

    var outputFailed: Bool { state.withLock { $0.outputError != nil } }

    var summary: Summary { state.withLock { $0 } }

    func resolved(line: Int, _ outcome: Result<RecordMetadata, SamsaError>, printing: Bool) {
        switch outcome {
        case .success(let metadata):
            // One write per line: a reader (or a parent killing us) sees every ack printed.
            var outputError: Int32?
            if printing {
                outputError = writeLine(#"{"line":\#(line),"partition":\#(metadata.partition),"offset":\#(metadata.offset)}"#)
            }
            let first = state.withLock { state -> Bool in
                state.acknowledged += 1
                guard let outputError, state.outputError == nil else { return false }
                state.outputError = outputError
                return true
            }
            if first { failureHook.withLock { $0 }?() }
        case .failure(let error):
            state.withLock { $0.failures.append("line \(line): \(error)") }
        }
    }
}

/// Writes `text` and a newline to standard output with one write(2), unbuffered; the errno when it
/// cannot.
@discardableResult
func writeLine(_ text: String) -> Int32? {
    var line = text
    line += "\n"
    return line.withUTF8 { bytes -> Int32? in
        var offset = 0
        while offset < bytes.count {
            let n = write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return n < 0 ? errno : EIO }
            offset += n
        }
        return nil
    }
}

/// Output to a closed pipe is an error to report (EPIPE), not a signal that kills the process before
/// it closes its directory.
func ignoreBrokenPipes() {
    signal(SIGPIPE, SIG_IGN)
}
