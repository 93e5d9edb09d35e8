import SamsaWaiting
import NIOCore
import SamsaProtocol
import SamsaStorage
import Synchronization
import Testing
@testable import SamsaBroker

/// Which appends wake which long-polling fetches (issue 20: 2,000 parked fetches were each woken,
/// and re-read everything, at every append).
/// Which appends wake which long-polling fetches (issue 20: 2,000 parked fetches were each woken,
/// and re-read everything, at every append), and the purgatory they wait in (issue 21: one way to
/// wait, no task or timer outliving its request).
@Suite("Fetch purgatory", .timeLimit(.minutes(1)))
struct FetchPurgatoryTests {
    /// A log whose ends and size the test sets.
    final class FakeLog: FetchInterest.Watched {
        private let state = Mutex((end: Int64(0), highWatermark: Int64(0), bytes: 0))

        func visibleEnd(_ limit: ReadLimit) -> Int64 {
            state.withLock { limit == .highWatermark ? $0.highWatermark : $0.end }
        }

        var appendedBytes: Int { state.withLock { $0.bytes } }

        /// One batch of `bytes` appended (and committed, with `commit`).
        func append(_ bytes: Int, commit: Bool = true) {
            state.withLock { state in
                state.end += 1
                state.bytes += bytes
                if commit { state.highWatermark = state.end }
            }
        }

        func commit() { state.withLock { $0.highWatermark = $0.end } }
    }

    let here = TopicPartition(topic: "t", partition: 0)
    let there = TopicPartition(topic: "t", partition: 1)

    /// A fetch waiting (a minute) in `purgatory` for `bytes` over `watches`.
    func park(_ watches: [FetchInterest.Watch], needing bytes: Int, in purgatory: Purgatory<TopicPartition>) -> DelayedOperation<TopicPartition, Bool> {
        let interest = FetchInterest(watches, needing: bytes)
        return purgatory.watch(interest.partitions, until: .now + .seconds(60), expired: false) { interest.satisfied(after: $0) }
    }

    /// A batch of `bytes` appended to `log`, the log of `partition`, and the purgatory told.
    func append(_ bytes: Int, to log: FakeLog, of partition: TopicPartition, _ purgatory: Purgatory<TopicPartition>) {
        log.append(bytes)
        purgatory.checkAndComplete(partition)
    }

    @Test("A fetch short of bytes wakes only once appends brought them, not at each append")
    func wakesWhenEnoughBytes() {
        let purgatory = Purgatory<TopicPartition>()
        let log = FakeLog()
        let fetch = park([.init(here, log: log, limit: .logEnd)], needing: 1_000, in: purgatory)
        #expect(purgatory.waiting == 1)
        for _ in 0..<9 { append(100, to: log, of: here, purgatory) }
        #expect(purgatory.completions == 0)
        append(100, to: log, of: here, purgatory)
        #expect(purgatory.completions == 1 && fetch.isCompleted)
        // Completed once only.
        append(100, to: log, of: here, purgatory)
        #expect(purgatory.completions == 1)
        purgatory.unwatch(fetch)
        #expect(purgatory.waiting == 0)
    }

    @Test("Appends to partitions a fetch does not read wake nobody; bytes add up over the ones it reads")
    func keyedByPartition() {
        let purgatory = Purgatory<TopicPartition>()
        let (first, second, other) = (FakeLog(), FakeLog(), FakeLog())
        let elsewhere = TopicPartition(topic: "u", partition: 0)
        let fetch = park([.init(here, log: first, limit: .logEnd), .init(there, log: second, limit: .logEnd)], needing: 150, in: purgatory)
        let bystander = park([.init(elsewhere, log: other, limit: .logEnd)], needing: 1_000, in: purgatory)
        append(100, to: first, of: here, purgatory)
        #expect(purgatory.completions == 0)
        append(100, to: other, of: elsewhere, purgatory)
        #expect(purgatory.completions == 0)
        append(100, to: second, of: there, purgatory)
        #expect(purgatory.completions == 1 && fetch.isCompleted && !bystander.isCompleted)
        purgatory.unwatch(fetch)
        purgatory.unwatch(bystander)
    }

    @Test("A consumer reading to the high watermark wakes when it moves, not at the append below it")
    func highWatermarkReaders() {
        let purgatory = Purgatory<TopicPartition>()
        let log = FakeLog()
        let consumer = park([.init(here, log: log, limit: .highWatermark)], needing: 1, in: purgatory)
        let follower = park([.init(here, log: log, limit: .logEnd)], needing: 1, in: purgatory)
        log.append(500, commit: false)
        purgatory.checkAndComplete(here)
        #expect(purgatory.completions == 1 && follower.isCompleted, "the follower, which reads to the log end")
        log.commit()
        purgatory.checkAndComplete(here)
        #expect(purgatory.completions == 2 && consumer.isCompleted)
        purgatory.unwatch(consumer)
        purgatory.unwatch(follower)
    }

    @Test("Appends between taking the watches (before the read) and parking count: enough of them complete it at once")
    func appendsBeforeRegistering() async {
        let purgatory = Purgatory<TopicPartition>()
        let log = FakeLog()
        let watch = FetchInterest.Watch(here, log: log, limit: .logEnd)
        log.append(100)
        purgatory.checkAndComplete(here)  // nobody waits yet
        let short = park([watch], needing: 200, in: purgatory)
        log.append(300)
        let enough = park([watch], needing: 200, in: purgatory)
        #expect(await enough.outcome() == true)  // completed by its first check
        #expect(purgatory.completions == 0)
        purgatory.checkAndComplete(here)
        #expect(purgatory.completions == 1 && short.isCompleted, "the first fetch, by the append it missed no byte of")
        purgatory.unwatch(short)
        purgatory.unwatch(enough)
    }

    @Test("A partition the broker did not have when the watches were taken (created since?) does not wait")
    func unknownPartition() async {
        let purgatory = Purgatory<TopicPartition>()
        let fetch = park([.init(here, log: nil, limit: .logEnd)], needing: 1 << 20, in: purgatory)
        #expect(await fetch.outcome() == true)
        purgatory.unwatch(fetch)
    }

    @Test("A wait ends at its deadline with the expired outcome, and leaves nothing registered")
    func deadline() async {
        let purgatory = Purgatory<TopicPartition>()
        let started = ContinuousClock.now
        let outcome = await purgatory.wait(on: [here], until: .now + .milliseconds(50), expired: "expired") { _ in nil }
        #expect(outcome == "expired")
        #expect(ContinuousClock.now - started >= .milliseconds(50))
        #expect(purgatory.waiting == 0)
    }

    @Test("Cancelling the waiting task completes the wait at once (a closed connection's fetch)")
    func cancellation() async {
        let purgatory = Purgatory<TopicPartition>()
        let waiting = Task { await purgatory.wait(on: [here], until: .now + .seconds(3_600), expired: "expired") { _ in nil } }
        while purgatory.waiting == 0 { await Task.yield() }
        waiting.cancel()
        #expect(await waiting.value == "expired")
        #expect(purgatory.waiting == 0)
    }

    @Test("An event completes a wait with its check's outcome; events on other keys do not run the check")
    func eventCompletes() async {
        let purgatory = Purgatory<TopicPartition>()
        let ready = Mutex(false)
        let checked = Mutex<[Int?]>([])
        let here = here
        async let outcome = purgatory.wait(on: [here], until: .now + .seconds(3_600), expired: 0) { key in
            checked.withLock { $0.append(key) }
            return ready.withLock { $0 } ? 1 : nil
        }
        while purgatory.waiting == 0 { await Task.yield() }
        purgatory.checkAndComplete(there)
        purgatory.checkAndComplete(here)
        ready.withLock { $0 = true }
        purgatory.checkAndComplete(here)
        #expect(await outcome == 1)
        #expect(checked.withLock { $0 } == [nil, 0, 0], "the first look, then the position of the key each event came on")
        #expect(purgatory.waiting == 0)
    }

    @Test("A parked fetch with min_bytes is not woken by appends that do not bring them, and returns once one does")
    func brokerWakesOnlySatisfiableFetches() async throws {
        try await TestBroker.with { broker in
            let consumer = try await TestConnection(port: broker.port)
            let producer = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("waits", partitions: 1, on: producer)
            let purgatory = broker.broker.dispatcher.fetchWaits
            let started = ContinuousClock.now
            async let fetched = consumer.request(
                ProduceFetchTests.fetchRequest("waits", offset: 0, maxWaitMs: 60_000, minBytes: 50_000), version: 12, expecting: FetchResponse.self)
            while purgatory.waiting == 0 && ContinuousClock.now - started < .seconds(30) {
                try await Task.sleep(for: .milliseconds(5))
            }
            for index in 0..<5 {
                #expect(try await ProduceFetchTests.produce([try makeBatch(count: 1, startingAt: index)], to: "waits", on: producer).errorCode == 0)
            }
            #expect(purgatory.completions == 0)
            #expect(purgatory.waiting == 1)
            let big = try FetchLimitsTests.batch(bytes: 60_000)
            #expect(try await ProduceFetchTests.produce([big], to: "waits", on: producer).errorCode == 0)
            let partition = try #require(try await fetched.responses.first?.partitions.first)
            #expect(try ProduceFetchTests.values(in: partition.records, from: 0).prefix(5) == ["value-0", "value-1", "value-2", "value-3", "value-4"])
            #expect(purgatory.completions == 1)
            #expect(ContinuousClock.now - started < .seconds(30), "the append did not wake the fetch")
            try await consumer.close()
            try await producer.close()
        }
    }
}
