import Foundation
import SamsaTestSupport
import Synchronization
import Testing

/// Issue 23's "Done when", on a real `samsa broker` process with confluent-kafka
/// (Tests/Interop/compaction_process.py): a compacted topic (segment.bytes=262144, segment.ms=1000,
/// min.cleanable.dirty.ratio=0.01, delete.retention.ms=2000) given 200,000 updates of 1,000 keys and
/// 100 tombstones shrinks on disk to under 10 % of its peak within a minute; a consumer from the
/// beginning sees every live key's latest value, in offset order, and no deleted key's value; a
/// second round of updates is cleaned while the broker is SIGKILLed (as soon as a `.cleaned` or
/// `.swap` file shows a clean under way), and after the restart no key's latest value is lost and
/// the deleted keys are gone (their tombstones past delete.retention.ms).
@Suite("Compaction with a samsa broker process and confluent-kafka", .offCooperativePool)
struct CompactionProcessTests {
    typealias BrokerProcess = BrokerProcessTests.BrokerProcess
    static let topic = "compacted"
    static let keys = 1000
    static let deleted = 100

    struct Consumed: Decodable {
        var records: [[String?]]
        var high_watermark: Int64
    }

    static func script(_ bootstrap: String, _ arguments: [String]) async throws -> Data {
        try await ClientProcess.run([
            "timeout", "-k", "5", "120", PythonClient.python, PythonClient.interop.appendingPathComponent("compaction_process.py").path, bootstrap, topic,
        ] + arguments)
    }

    /// Sum of the partition's segment file sizes (`.log`) on disk.
    static func segmentBytes(_ directory: String) -> Int64 {
        let partition = "\(directory)/\(topic)-0"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: partition)) ?? []
        return names.filter { $0.hasSuffix(".log") }.reduce(Int64(0)) { total, name in
            total + ((try? FileManager.default.attributesOfItem(atPath: "\(partition)/\(name)")[.size] as? NSNumber)?.int64Value ?? 0)
        }
    }

    /// Whether a clean is under way: its `.cleaned` or `.swap` files exist.
    static func cleaning(_ directory: String) -> Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/\(topic)-0")) ?? []
        return names.contains { $0.hasSuffix(".cleaned") || $0.hasSuffix(".swap") }
    }

    /// What a consumer from the beginning read: (offset, key, value) in the order received.
    static func consume(_ bootstrap: String) async throws -> [(offset: Int64, key: String, value: String?)] {
        let consumed = try JSONDecoder().decode(Consumed.self, from: try await script(bootstrap, ["consume"]))
        return consumed.records.map { (Int64($0[0] ?? "") ?? -1, $0[1] ?? "", $0[2]) }
    }

    /// Checks what a consumer read against `latest` (each live key's latest value); the deleted keys
    /// may show only tombstones. Returns whether every deleted key was gone (tombstones removed too).
    static func check(_ records: [(offset: Int64, key: String, value: String?)], latest: [String: String]) -> Bool {
        let offsets = records.map { $0.offset }
        #expect(zip(offsets, offsets.dropFirst()).allSatisfy { $0 < $1 }, "offsets strictly increase")
        var last: [String: String?] = [:]
        for record in records { last[record.key] = .some(record.value) }
        for (key, value) in latest { #expect(last[key] == .some(value), "\(key): its latest value \(value), read \(String(describing: last[key]))") }
        let deletedKeys = (0..<deleted).map { "key-\($0)" }
        for key in deletedKeys { #expect(last[key] == nil || last[key] == .some(nil), "\(key) was deleted, read \(String(describing: last[key]))") }
        let unknown = last.keys.filter { latest[$0] == nil && !deletedKeys.contains($0) }
        #expect(unknown.isEmpty, "keys never written: \(unknown.prefix(3))")
        return deletedKeys.allSatisfy { last[$0] == nil }
    }

    @Test("200,000 updates of 1,000 keys and 100 tombstones shrink under 10 % within a minute; a SIGKILL during the next clean loses no latest value")
    func compactsAndSurvivesKill() async throws {
        let directory = temporaryPath("samsa-compaction-process")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let options = ["--log-cleaner-backoff-ms", "100"]
        var broker = try BrokerProcess(directory: directory, extra: options)
        var bootstrap = "127.0.0.1:\(broker.port)"
        _ = try await Self.script(bootstrap, ["create"])

        // Round 1, the peak size watched while it is written (the cleaner may start meanwhile: the
        // peak is then lower and the 10 % stricter).
        let watch = PeakWatch()
        let watcher = Task.detached {
            while watch.watching.load(ordering: .relaxed) {
                let size = Self.segmentBytes(directory)
                watch.peak.withLock { $0 = max($0, size) }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        let started = ContinuousClock.now
        _ = try await Self.script(bootstrap, ["produce", "0", "200000", "0", "\(Self.keys)", "\(Self.deleted)"])
        let produced = ContinuousClock.now
        var latest: [String: String] = [:]
        for n in 0..<200_000 where n % Self.keys >= Self.deleted { latest["key-\(n % Self.keys)"] = "value-\(n)" }

        var size = Self.segmentBytes(directory)
        while ContinuousClock.now < produced + .seconds(60) {
            size = Self.segmentBytes(directory)
            if size * 10 < watch.peak.withLock({ max($0, size) }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let shrunk = ContinuousClock.now
        watch.watching.store(false, ordering: .relaxed)
        await watcher.value
        let top = watch.peak.withLock { $0 }
        print("compaction round 1: produced 200,100 records in \(produced - started); peak \(top) segment bytes, \(size) after \(shrunk - produced) (\(String(format: "%.2f", 100 * Double(size) / Double(max(top, 1)))) %)")
        #expect(size * 10 < top, "shrank under 10 % within a minute: \(size) of \(top) bytes")
        _ = Self.check(try await Self.consume(bootstrap), latest: latest)

        // Round 2, once the tombstones are past delete.retention.ms (2 s after the clean that kept
        // them), updates of the live keys; the broker is killed as soon as a clean is seen under way.
        try await Task.sleep(for: .milliseconds(2500))
        _ = try await Self.script(bootstrap, ["produce", "200000", "100000", "\(Self.deleted)", "\(Self.keys)", "0"])
        for n in 200_000..<300_000 { latest["key-\(Self.deleted + n % (Self.keys - Self.deleted))"] = "value-\(n)" }
        let deadline = ContinuousClock.now + .seconds(20)
        var caught = false
        while ContinuousClock.now < deadline {
            if Self.cleaning(directory) {
                caught = true
                break
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        broker.signal(SIGKILL)
        print("compaction round 2: SIGKILL \(caught ? "while a clean was under way (.cleaned/.swap files present)" : "without having seen a clean under way")")
        broker = try BrokerProcess(directory: directory, extra: options)
        bootstrap = "127.0.0.1:\(broker.port)"
        // Never a lost latest value; the deleted keys disappear once the restarted cleaner has run.
        var gone = false
        let settle = ContinuousClock.now + .seconds(30)
        while !gone && ContinuousClock.now < settle {
            gone = Self.check(try await Self.consume(bootstrap), latest: latest)
            if !gone { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(gone, "the deleted keys' tombstones are removed after delete.retention.ms")
        print("compaction round 2: after the restart \(Self.segmentBytes(directory)) segment bytes, deleted keys gone: \(gone), total \(ContinuousClock.now - started)")
        broker.signal(SIGTERM)
    }
}

/// The peak size seen by the watcher task, and whether it still watches.
private final class PeakWatch: Sendable {
    let peak = Mutex<Int64>(0)
    let watching = Atomic<Bool>(true)
}
