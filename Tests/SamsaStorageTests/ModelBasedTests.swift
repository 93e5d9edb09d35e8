import Foundation
import NIOCore
import SamsaRecords
@testable import SamsaStorage
import Testing

/// Random sequences of append / read / roll / truncate / retention / flush / close-reopen / crash /
/// power cut, checked after every step against a simple in-memory model of what the log must hold.
@Suite("Model-based")
struct ModelBasedTests {
    /// What the log must hold: batches of record values, the log start, and what a power cut keeps.
    struct Model {
        var batches: [(base: Int64, values: [[UInt8]])] = []
        var start: Int64 = 0
        var durableEnd: Int64 = 0
        var end: Int64 { batches.last.map { $0.base + Int64($0.values.count) } ?? start }
        var records: [(Int64, [UInt8])] {
            batches.flatMap { batch in batch.values.enumerated().map { (batch.base + Int64($0.offset), $0.element) } }.filter { $0.0 >= start }
        }
        mutating func truncate(to offset: Int64) {
            guard let index = batches.firstIndex(where: { $0.base + Int64($0.values.count) > offset }) else { return }
            batches.removeSubrange(index...)
            durableEnd = min(durableEnd, end)
        }
    }

    /// Even seeds run with write-ahead zeros in the active segment (files longer than their batches).
    func configuration(seed: UInt64) -> LogConfiguration {
        var configuration = smallLogConfiguration(.never)
        configuration.segmentBytes = 2048
        configuration.retentionBytes = 6000
        configuration.writeAheadBytes = seed % 2 == 0 ? 512 : 0
        return configuration
    }

    func check(_ log: PartitionLog, against model: Model, step: Int, operation: String) throws {
        #expect(log.logEndOffset == model.end, "step \(step) after \(operation): log end")
        #expect(log.logStartOffset == model.start, "step \(step) after \(operation): log start")
        var actual: [(Int64, [UInt8])] = []
        var next = log.logStartOffset
        while let bytes = try log.read(from: next, maxBytes: 8192) {
            var remaining = bytes
            while remaining.readableBytes > 0 {
                let batch = try RecordBatch(validating: remaining)
                actual += try batch.decodeRecords().filter { $0.offset >= next }.map { ($0.offset, $0.valueBytes ?? []) }
                next = batch.nextOffset
                remaining.moveReaderIndex(forwardBy: batch.sizeInBytes)
            }
        }
        let expected = model.records
        #expect(actual.map(\.0) == expected.map(\.0), "step \(step) after \(operation): offsets")
        #expect(actual.map(\.1) == expected.map(\.1), "step \(step) after \(operation): values")
    }

    @Test("the log matches the model after every step", arguments: 1...8)
    func randomOperations(seed: UInt64) async throws {
        let dir = try TemporaryDirectory()
        let files = FaultInjectingFileSystem()
        var rng = SplitMix(seed: seed)
        var model = Model()
        var (log, _) = try PartitionLog.open(directory: dir.path, configuration: configuration(seed: seed), files: files)
        for step in 0..<250 {
            let roll = rng.next() % 100
            var operation = ""
            switch roll {
            case 0..<45:
                let count = Int(rng.next() % 6) + 1
                let values = (0..<count).map { _ in Array("v\(rng.next() % 100_000)-".utf8) + [UInt8](repeating: UInt8(rng.next() % 256), count: Int(rng.next() % 120)) }
                var builder = RecordBatchBuilder(compression: [.none, .lz4, .zstd][Int(rng.next() % 3)])
                for value in values { builder.append(timestamp: Int64(step), key: nil, value: value) }
                let result = try await log.append(try builder.build())
                #expect(result.baseOffset == model.end)
                model.batches.append((result.baseOffset, values))
                operation = "append \(count)"
            case 45..<55:
                try log.roll()
                operation = "roll"
            case 55..<62:
                let target = model.start + Int64(rng.next() % UInt64(model.end - model.start + 1))
                try log.truncate(to: target)
                model.truncate(to: target)
                operation = "truncate to \(target)"
            case 62..<68:
                try log.applyRetention(nowMilliseconds: 0)
                model.start = log.logStartOffset
                #expect(model.batches.contains { $0.base == model.start } || model.start == model.end, "log start on a batch boundary")
                model.batches.removeAll { $0.base + Int64($0.values.count) <= model.start }
                operation = "retention"
            case 68..<80:
                try log.flush()
                model.durableEnd = model.end
                operation = "flush"
            case 80..<86:
                try log.close()
                model.durableEnd = model.end
                log = try PartitionLog.open(directory: dir.path, configuration: configuration(seed: seed), cleanShutdown: true, files: files).log
                operation = "close and reopen"
            case 86..<93:
                // Process crash: the page cache keeps every write.
                let recoveryPoint = log.flushedOffset
                log = try PartitionLog.open(directory: dir.path, configuration: configuration(seed: seed), recoveryPoint: recoveryPoint, files: files).log
                operation = "crash and reopen"
            default:
                // Power cut: only synced bytes remain.
                let recoveryPoint = log.flushedOffset
                files.simulatePowerCut()
                log = try PartitionLog.open(directory: dir.path, configuration: configuration(seed: seed), recoveryPoint: recoveryPoint, files: files).log
                // Everything synced survives; more may (write-ahead fills sync the file too), but only
                // a prefix of what was written, ending on a batch boundary (`check` compares contents).
                let survived = log.logEndOffset
                #expect(survived >= model.durableEnd && survived <= model.end, "step \(step): \(survived) survived of \(model.durableEnd)...\(model.end)")
                #expect(survived == model.start || model.batches.contains { $0.base + Int64($0.values.count) == survived }, "step \(step): survivors end mid-batch")
                model.truncate(to: survived)
                model.durableEnd = survived
                operation = "power cut and reopen"
            }
            try check(log, against: model, step: step, operation: operation)
        }
    }
}

/// A small seeded generator so a failing sequence replays.
struct SplitMix {
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
