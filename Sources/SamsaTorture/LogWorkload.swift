import SamsaRecords
import SamsaStorage

/// One partition log under a random workload, with the model of what it must hold. Each step does one
/// thing to the log (append, concurrent appends, roll, truncate, retention, flush, close and reopen,
/// process crash and reopen) and updates the model with what the log reported. A step that fails
/// leaves notes of what may or may not have happened (`uncertain…`), for the checks after a crash.
struct LogWorkload {
    enum Step: CaseIterable, CustomStringConvertible {
        case append, concurrentAppends, roll, truncate, retention, flush, cleanReopen, crashReopen

        /// Weights as in the first model-based test: mostly appends, every kind of step often.
        static func pick(_ random: inout TortureRandom) -> Step {
            switch random.below(100) {
            case 0..<38: .append
            case 38..<46: .concurrentAppends
            case 46..<55: .roll
            case 55..<62: .truncate
            case 62..<68: .retention
            case 68..<80: .flush
            case 80..<88: .cleanReopen
            default: .crashReopen
            }
        }

        var description: String {
            switch self {
            case .append: "append"
            case .concurrentAppends: "concurrent appends"
            case .roll: "roll"
            case .truncate: "truncate"
            case .retention: "retention"
            case .flush: "flush"
            case .cleanReopen: "close and reopen"
            case .crashReopen: "process crash and reopen"
            }
        }
    }

    let directory: String
    let configuration: LogConfiguration
    var files: FaultInjectingFileSystem
    var log: PartitionLog?
    var model = LogModel()
    var random: TortureRandom
    /// Records the flush policy acknowledged (append returned).
    var acknowledgedRecords = 0
    /// Records compared after reopening.
    var checkedRecords = 0
    /// Where a truncation that failed part way would have cut: it may have happened, whole or in part.
    var uncertainTruncation: Int64?
    /// Batches an append wrote before failing without the log taking them (they may be on disk).
    var maybeWritten: [LogModel.Batch] = []
    /// The flushed offset the log last reported (a recovery point a checkpoint may hold).
    var lastFlushed: Int64 = 0
    private var timestamp: Int64 = 1_000

    init(directory: String, configuration: LogConfiguration, files: FaultInjectingFileSystem, random: TortureRandom) throws(StorageError) {
        self.directory = directory
        self.configuration = configuration
        self.files = files
        self.random = random
        log = try PartitionLog.open(directory: directory, configuration: configuration, files: files).log
    }

    /// A random configuration: small segments, sparse or dense indexes (small ones fill and force
    /// rolls), retention on or off, write-ahead zeros on or off.
    static func randomConfiguration(_ policy: FlushPolicy, _ random: inout TortureRandom) -> LogConfiguration {
        LogConfiguration(
            segmentBytes: random.within(1024...16384), flushPolicy: policy,
            retentionBytes: random.chance(70) ? Int64(random.within(4000...40000)) : nil,
            segment: SegmentConfiguration(indexIntervalBytes: [64, 512, 4096][random.below(3)], maxIndexSize: [64, 1024, 1 << 16][random.below(3)]),
            fileDeleteDelayMilliseconds: 0, writeAheadBytes: [0, 0, 512, 4096][random.below(4)])
    }

    /// The log, reopened (recovering) if a previous reopen failed: the process would start again.
    private mutating func openLog() throws -> PartitionLog {
        if let log { return log }
        let reopened = try PartitionLog.open(directory: directory, configuration: configuration, recoveryPoint: 0, files: files).log
        log = reopened
        try adoptMaybeWritten(reopened)
        model.reopened()
        return reopened
    }

    /// After a reopen, batches that failed appends wrote before failing may be back (recovery finds
    /// them valid): the model takes them, and nothing else, past its end.
    mutating func adoptMaybeWritten(_ log: PartitionLog) throws(TortureViolation) {
        while log.logEndOffset > model.end, let batch = maybeWritten.first(where: { $0.base == model.end }) {
            model.add([batch])
            maybeWritten.removeAll { $0.base <= batch.base }
        }
        maybeWritten.removeAll { $0.base < model.end }
        try require(log.logEndOffset <= model.end, "reopened, the log ends at \(log.logEndOffset), past everything written (\(model.end)): invented")
    }

    private mutating func nextTimestamp() -> Int64 {
        timestamp += 100
        return timestamp
    }

    /// Runs one step. Throws a `TortureViolation` when the log broke a promise, any other error when a
    /// storage call failed (the caller decides whether that was expected).
    mutating func perform(_ step: Step) async throws {
        let log = try openLog()
        defer { lastFlushed = self.log?.flushedOffset ?? lastFlushed }
        switch step {
        case .append:
            let (batch, contents) = try RandomBatch.make(&random, timestamp: nextTimestamp())
            let result: AppendResult
            do {
                result = try log.appendWithoutWaiting(batch)
            } catch {
                maybeWritten.append(LogModel.Batch(base: model.end, contents: contents))
                throw error
            }
            try require(result.baseOffset == model.end, "append got offset \(result.baseOffset), the log end was \(model.end)")
            model.add([LogModel.Batch(base: result.baseOffset, contents: contents)])
            try await log.waitForFlushPolicy(result)
            acknowledge(contents.count, through: result.nextOffset)
        case .concurrentAppends:
            try await appendConcurrently(log)
        case .roll:
            try log.roll()
        case .truncate:
            let target = model.start + Int64(random.below(Int(model.end - model.start) + 1))
            do {
                try log.truncate(to: target)
            } catch {
                // Whole batches go: the cut falls at the start of the batch holding the target.
                var cut = model
                cut.truncate(to: target)
                uncertainTruncation = min(uncertainTruncation ?? cut.end, cut.end)
                // The log may have cut part of the way: what it now reports is where appends go on.
                let end = log.logEndOffset
                if end != model.end {
                    try require(
                        end < model.end && end == cut.end,
                        "a failed truncation to \(target) (\(error)) left the log end at \(end), of \(model.end)")
                    // The cut is in the file but not known to be synced: a power cut may bring the
                    // cut batches back (the caller was told the truncation failed).
                    maybeWritten = model.batches.filter { $0.base >= end } + maybeWritten
                    model.truncate(to: end)
                }
                throw error
            }
            model.truncate(to: target)
            try require(log.logEndOffset == model.end, "truncate to \(target) left the log end at \(log.logEndOffset), expected \(model.end)")
        case .retention:
            do {
                try log.applyRetention(nowMilliseconds: 0)
            } catch {
                // The segments that went before the failure moved the log start; the one that failed
                // stayed whole (PartitionLog.applyRetention).
                try require(model.isBoundary(log.logStartOffset), "a failed retention (\(error)) left the log start at \(log.logStartOffset), not a batch boundary")
                model.advanceStart(to: log.logStartOffset)
                throw error
            }
            try require(model.isBoundary(log.logStartOffset), "retention moved the log start to \(log.logStartOffset), not a batch boundary")
            model.advanceStart(to: log.logStartOffset)
        case .flush:
            try log.flush()
            model.durableEnd = model.end
        case .cleanReopen:
            self.log = nil
            try log.close()
            model.durableEnd = model.end
            let reopened = try PartitionLog.open(directory: directory, configuration: configuration, cleanShutdown: true, files: files).log
            self.log = reopened
            try adoptMaybeWritten(reopened)
            model.reopened()
        case .crashReopen:
            self.log = nil
            let recoveryPoint = Int64(random.below(Int(log.flushedOffset) + 1))
            files = files.crashProcess()
            let reopened = try PartitionLog.open(directory: directory, configuration: configuration, recoveryPoint: recoveryPoint, files: files).log
            self.log = reopened
            try adoptMaybeWritten(reopened)
            // Recovery syncs what it kept.
            model.reopened()
        }
    }

    private mutating func acknowledge(_ records: Int, through end: Int64) {
        acknowledgedRecords += records
        model.acknowledgedEnd = max(model.acknowledgedEnd, end)
        if configuration.flushPolicy == .everyAppend {
            model.durableEnd = max(model.durableEnd, end)
        }
    }

    private struct AppenderOutcome: Sendable {
        var written: [LogModel.Batch] = []
        var acknowledgedRecords = 0
        var acknowledgedEnd: Int64 = 0
        var error: (any Error)?
    }

    /// 2 to 4 appenders at once, each appending and waiting for its flush policy in turn (under
    /// every-append their fdatasyncs are shared: group commit).
    private mutating func appendConcurrently(_ log: PartitionLog) async throws {
        var plans: [[(RecordBatch, BatchContents)]] = []
        for _ in 0..<random.within(2...4) {
            var plan: [(RecordBatch, BatchContents)] = []
            for _ in 0..<random.within(1...5) { plan.append(try RandomBatch.make(&random, timestamp: nextTimestamp(), maxRecords: 8)) }
            plans.append(plan)
        }
        let outcomes = await withTaskGroup(of: AppenderOutcome.self) { group in
            for plan in plans {
                group.addTask {
                    var outcome = AppenderOutcome()
                    for (batch, contents) in plan {
                        do {
                            let result = try log.appendWithoutWaiting(batch)
                            outcome.written.append(LogModel.Batch(base: result.baseOffset, contents: contents))
                            try await log.waitForFlushPolicy(result)
                            outcome.acknowledgedRecords += contents.count
                            outcome.acknowledgedEnd = max(outcome.acknowledgedEnd, result.nextOffset)
                        } catch {
                            outcome.error = error
                            break
                        }
                    }
                    return outcome
                }
            }
            var outcomes: [AppenderOutcome] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        let previousEnd = model.end
        model.add(outcomes.flatMap(\.written))
        var expected = previousEnd
        for batch in model.batches where batch.base >= previousEnd {
            try require(
                batch.base == expected,
                "concurrent appends: a batch at \(batch.base), expected \(expected) (offsets reused or skipped); appenders wrote at \(outcomes.map { $0.written.map(\.base) }), failed with \(outcomes.compactMap { $0.error.map { "\($0)" } })")
            expected = batch.next
        }
        for outcome in outcomes { acknowledge(outcome.acknowledgedRecords, through: outcome.acknowledgedEnd) }
        if let error = outcomes.compactMap(\.error).first { throw error }
    }

    /// Compares the log with the model (the log must be open and its files reachable).
    mutating func check(_ context: String, liveTail: Bool = false) throws(TortureViolation) -> Int {
        guard let log else { throw TortureViolation("\(context): no log open") }
        return try LogCheck.compare(log, with: model, context, random: &random, liveTail: liveTail, verifyFiles: !liveTail || uncertainTruncation == nil)
    }
}
