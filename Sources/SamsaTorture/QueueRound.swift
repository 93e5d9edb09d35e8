import Glibc
import Samsa
public import SamsaStorage

/// A queue round: `samsa torture-child --queue` runs a producer and a consumer-group member on the
/// embedded queue in a child process, reporting sends, deliveries and commits on a pipe, and gets
/// SIGKILL after a random number of lines; 1 to 3 lives in the same directory. After each kill the
/// parent reopens the queue and checks: every acknowledged send is in its partition at its offset
/// with its value; the group's committed offset is never ahead of what was delivered and never
/// behind a commit that returned; and the next life delivers each partition again from the committed
/// offset (at-least-once: nothing between the committed offset and a delivery is skipped).
public struct QueueRound: Sendable {
    public var policy: FlushPolicy
    public var seed: UInt64
    public var round: Int
    public var directory: String
    public var executable: String

    public init(policy: FlushPolicy, seed: UInt64, round: Int, directory: String, executable: String) {
        self.policy = policy
        self.seed = seed
        self.round = round
        self.directory = directory
        self.executable = executable
    }

    public func run() throws -> RoundTally {
        var random = TortureRandom(seed: seed, round: round, stream: 6)
        var sent: [Int: [Int64: String]] = [:]
        var delivered: [Int: Int64] = [:]  // the offset after the highest delivery, per partition
        var committed: [Int: Int64] = [:]  // after each kill
        var tally = RoundTally()
        for life in 0..<random.within(1...3) {
            let killAfter = random.chance(10) ? 0 : random.within(1...600)
            let child = try ChildProcess(
                executable: executable,
                arguments: [
                    "torture-child", "--queue", "--dir", directory, "--flush", policy.description, "--seed", "\(seed)", "--round", "\(round)", "--life",
                    "\(life)",
                ],
                standardErrorPath: directory + ".stderr")
            var lines = 0
            var report = LifeReport(life: life)
            while lines < killAfter, let line = child.readLine() {
                try report.take(line, sent: &sent, delivered: &delivered)
                lines += 1
            }
            child.kill()
            while let line = child.readLine() { try report.take(line, sent: &sent, delivered: &delivered) }
            tally.acknowledged += report.acknowledged
            let (signal, status) = child.wait()
            guard signal == SIGKILL else {
                let errors = (try? PosixFileSystem().readFile(directory + ".stderr")).map { String(decoding: $0, as: UTF8.self) } ?? ""
                throw TortureViolation("life \(life): the child ended by itself (signal \(signal ?? 0), status \(status)) before the kill: \(errors)")
            }
            tally.events += 1
            let context = "after kill \(life + 1) (\(lines) lines read first)"
            // At-least-once: this life started each partition where the last commit left it.
            for (partition, first) in report.firstDelivery {
                let resume = committed[partition] ?? 0
                try require(first <= resume, "\(context): partition \(partition) delivered from \(first), but the committed offset was \(resume): skipped")
            }
            let (checked, now) = try verify(sent: sent, delivered: delivered, returnedCommits: report.returnedCommits, context: context)
            tally.checked += checked
            committed = now
        }
        unlink(directory + ".stderr")
        return tally
    }

    private func verify(
        sent: [Int: [Int64: String]], delivered: [Int: Int64], returnedCommits: [Int: Int64], context: String
    ) throws -> (checked: Int, committed: [Int: Int64]) {
        let samsa = try Samsa.open(directory: directory)
        // Closed whatever happens: the next life cannot open the directory while this one holds it.
        defer { try? samsa.close() }
        guard samsa.topics.contains(QueueChild.topic) else {
            try require(sent.isEmpty, "\(context): the topic is gone")
            return (0, [:])
        }
        var checked = 0
        var committed: [Int: Int64] = [:]
        let partitions = try samsa.describeTopic(QueueChild.topic).partitions.count
        for partition in 0..<partitions {
            var found: [Int64: String] = [:]
            var next: Int64 = 0
            while true {
                let records = try samsa.read(topic: QueueChild.topic, partition: partition, from: next)
                guard let last = records.last else { break }
                for record in records where record.offset >= next { found[record.offset] = record.valueString ?? "" }
                next = last.offset + 1
            }
            for (offset, value) in sent[partition] ?? [:] {
                try require(found[offset] == value, "\(context): LOST acknowledged send at partition \(partition) offset \(offset) (found \(found[offset] ?? "nothing"))", lost: 1)
                checked += 1
            }
            if let offset = try samsa.committedOffset(group: QueueChild.group, topic: QueueChild.topic, partition: partition) {
                try require(
                    offset <= delivered[partition] ?? 0,
                    "\(context): partition \(partition) committed offset \(offset) is ahead of what was delivered (\(delivered[partition] ?? 0))")
                committed[partition] = offset
            }
            if let returned = returnedCommits[partition] {
                try require(
                    (committed[partition] ?? -1) >= returned,
                    "\(context): partition \(partition) committed offset \(committed[partition] ?? -1), but a commit of \(returned) had returned: LOST commit")
            }
        }
        return (checked, committed)
    }
}

/// What one life of the queue child reported.
private struct LifeReport {
    var life: Int
    var acknowledged = 0
    var firstDelivery: [Int: Int64] = [:]
    var returnedCommits: [Int: Int64] = [:]

    mutating func take(_ line: String, sent: inout [Int: [Int64: String]], delivered: inout [Int: Int64]) throws(TortureViolation) {
        let fields = line.split(separator: " ", maxSplits: 3).map(String.init)
        guard fields.count >= 3, let partition = Int(fields[1]), let offset = Int64(fields[2]) else {
            throw TortureViolation("life \(life): the child printed \"\(line)\"")
        }
        switch fields[0] {
        case "P":
            let value = fields.count == 4 ? fields[3] : ""
            if let earlier = sent[partition]?[offset] {
                throw TortureViolation("life \(life): offset \(offset) of partition \(partition) acknowledged twice (\(earlier), \(value))")
            }
            sent[partition, default: [:]][offset] = value
            acknowledged += 1
        case "D":
            if firstDelivery[partition] == nil { firstDelivery[partition] = offset }
            delivered[partition] = max(delivered[partition] ?? 0, offset + 1)
        case "C":
            returnedCommits[partition] = offset
        default:
            throw TortureViolation("life \(life): the child printed \"\(line)\"")
        }
    }
}
