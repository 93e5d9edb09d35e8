import Glibc
import SamsaStorage
@testable import SamsaTorture
import Testing
import SamsaTestSupport

/// A fresh directory under /tmp, removed with everything in it.
final class RoundDirectory {
    let path: String

    init() {
        var template = Array("/tmp/samsa-torture-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    deinit {
        TortureRunner.removeTree(path)
    }
}

/// Every flush policy, with short intervals so background flushes happen within a round.
let flushPolicies: [FlushPolicy] = [.everyAppend, .interval(milliseconds: 2), .messages(count: 7), .never]

/// The short form of `samsa torture` that CI runs: a few seeded rounds of each kind per flush policy.
/// The same engine (workload, model, checks) as long runs; `samsa torture --seed S --start-round R
/// --rounds 1 --flush P --mode M` replays any of them.
@Suite("Torture (short form)", .offCooperativePool, .serialized)
struct TortureTests {
    @Test("power cuts: the log matches the model after every step and after recovery", arguments: flushPolicies)
    func powerCuts(policy: FlushPolicy) async throws {
        let dir = RoundDirectory()
        let summary = await TortureRunner.run(TortureOptions(rounds: 8, seed: 13, policy: policy, modes: [.powerCut], directory: dir.path))
        expectNoViolation(summary)
        if summary.failure == nil { #expect(summary.powerCuts == 8) }
        #expect(summary.recordsChecked > 0 && summary.recordsAcknowledged > 0)
    }

    @Test("injected EIO and ENOSPC: surfaced, nothing acknowledged lost, nothing invented", arguments: flushPolicies)
    func ioErrors(policy: FlushPolicy) async throws {
        var fired = 0
        for round in 0..<6 {
            let dir = RoundDirectory()
            let ioError = IOErrorRound(policy: policy, seed: 7, round: round, directory: dir.path + "/log")
            do {
                fired += try await ioError.run().events
            } catch {
                Issue.record("round \(round): \(error) — samsa torture --seed 7 --start-round \(round) --rounds 1 --mode io-error")
            }
        }
        #expect(fired > 0, "no injected failure fired: the rounds proved nothing")
    }

    /// Rounds that failed on storage defects of issue 9 before their fixes (replays in the README):
    /// a truncation that did not lower the group commit's durable end (power cut, every time), and a
    /// failed truncation that left the log end past what it held (io-error, 8 runs of 10).
    @Test(
        "regressions: rounds that lost acknowledged records or corrupted the log before issue 9's fixes",
        arguments: [(1, 4, TortureMode.powerCut), (3, 12, TortureMode.ioError), (5, 6, TortureMode.ioError), (7, 7, TortureMode.ioError)])
    func regressions(seed: Int, round: Int, mode: TortureMode) async throws {
        let dir = RoundDirectory()
        let summary = await TortureRunner.run(
            TortureOptions(rounds: 1, seed: UInt64(seed), startRound: round, policy: .everyAppend, modes: [mode], directory: dir.path))
        #expect(summary.failure == nil, "\(summary.failure ?? "") — \(summary.replay ?? "")")
    }

    @Test("SIGKILL of a child process: every acknowledged batch survives", arguments: flushPolicies)
    func kills(policy: FlushPolicy) async throws {
        let dir = RoundDirectory()
        let summary = await TortureRunner.run(
            TortureOptions(rounds: 2, seed: 7, policy: policy, modes: [.sigkill], directory: dir.path, executable: samsaExecutable()))
        expectNoViolation(summary)
        #expect(summary.kills >= 2)
        #expect(summary.recordsAcknowledged > 0, "the child acknowledged nothing: the rounds proved nothing")
    }

    @Test("the embedded queue under SIGKILL: sends survive, commits never ahead of deliveries, at-least-once", arguments: flushPolicies)
    func queue(policy: FlushPolicy) async throws {
        let dir = RoundDirectory()
        let summary = await TortureRunner.run(
            TortureOptions(rounds: 2, seed: 7, policy: policy, modes: [.queue], directory: dir.path, executable: samsaExecutable()))
        expectNoViolation(summary)
        #expect(summary.kills >= 2)
        #expect(summary.recordsAcknowledged > 0, "the child acknowledged no send: the rounds proved nothing")
    }

    @Test("the checks catch a disk whose syncs lie: acknowledged records lost (or truncated ones back)")
    func lyingDiskIsCaught() async throws {
        var losses = 0
        for round in 0..<12 {
            let dir = RoundDirectory()
            var powerCut = PowerCutRound(policy: .everyAppend, seed: 7, round: round, directory: dir.path + "/log")
            powerCut.lyingDisk = true
            do {
                _ = try await powerCut.run()
            } catch let violation as TortureViolation {
                // Lost acknowledged records, or truncated ones back (the truncation's sync lied too):
                // past the end, or in place of the records appended after the cut.
                let caught = ["LOST", "invented", "expected"].contains { violation.message.contains($0) }
                #expect(caught, "\(violation)")
                losses += violation.lost > 0 ? 1 : 0
            }
        }
        #expect(losses > 0)
    }

    @Test("a round's generator depends only on the seed and the round")
    func generatorIsSeeded() {
        var first = TortureRandom(seed: 42, round: 3, stream: 1)
        var again = TortureRandom(seed: 42, round: 3, stream: 1)
        var other = TortureRandom(seed: 42, round: 4, stream: 1)
        let a = (0..<8).map { _ in first.next() }
        #expect(a == (0..<8).map { _ in again.next() })
        #expect(a != (0..<8).map { _ in other.next() })
    }
}

/// Fails on a violation, with the command that replays it.
func expectNoViolation(_ summary: TortureSummary, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let failure = summary.failure else { return }
    Issue.record(Comment(rawValue: "\(failure) — \(summary.replay ?? "")"), sourceLocation: sourceLocation)
}

/// The `samsa` executable built next to the test bundle.
func samsaExecutable() -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let me = String(decoding: buffer[..<max(count, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    var directory = me[..<(me.lastIndex(of: "/") ?? me.startIndex)]
    // The test binary sits inside `<build>/debug/SamsaPackageTests.xctest` (a file on Linux).
    if directory.hasSuffix(".xctest") { directory = directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)] }
    return directory + "/samsa"
}
