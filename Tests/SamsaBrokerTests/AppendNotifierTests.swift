import NIOCore
import SamsaProtocol
import SamsaStorage
import Synchronization
import Testing
@testable import SamsaBroker

/// Which appends wake which long-polling fetches (issue 20: 2,000 parked fetches were each woken,
/// and re-read everything, at every append).
@Suite("Append notifier", .timeLimit(.minutes(1)))
struct AppendNotifierTests {
    /// A log whose ends and size the test sets.
    final class FakeLog: AppendNotifier.Watched {
        private let state = Mutex((end: Int64(0), highWatermark: Int64(0), bytes: 0))

        func visibleEnd(_ limit: ReadLimit) -> Int64 {
            state.withLock { limit == .highWatermark ? $0.highWatermark : $0.end }
        }

        var sizeInBytes: Int { state.withLock { $0.bytes } }

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

    /// A batch of `bytes` appended to `log`, the log of `partition`, and the notifier told.
    func append(_ bytes: Int, to log: FakeLog, of partition: TopicPartition, _ notifier: AppendNotifier) {
        log.append(bytes)
        notifier.appended(to: partition)
    }

    @Test("A fetch short of bytes wakes only once appends brought them, not at each append")
    func wakesWhenEnoughBytes() {
        let notifier = AppendNotifier()
        let log = FakeLog()
        let waiter = notifier.register([.init(here, log: log, limit: .logEnd)], needing: 1_000)
        #expect(notifier.waitingFetches == 1)
        for _ in 0..<9 { append(100, to: log, of: here, notifier) }
        #expect(notifier.wakeUps == 0)
        append(100, to: log, of: here, notifier)
        #expect(notifier.wakeUps == 1)
        // Signalled once only.
        append(100, to: log, of: here, notifier)
        #expect(notifier.wakeUps == 1)
        notifier.unregister(waiter)
        #expect(notifier.waitingFetches == 0)
    }

    @Test("Appends to partitions a fetch does not read wake nobody; bytes add up over the ones it reads")
    func keyedByPartition() {
        let notifier = AppendNotifier()
        let (first, second, other) = (FakeLog(), FakeLog(), FakeLog())
        let elsewhere = TopicPartition(topic: "u", partition: 0)
        let waiter = notifier.register([.init(here, log: first, limit: .logEnd), .init(there, log: second, limit: .logEnd)], needing: 150)
        let bystander = notifier.register([.init(elsewhere, log: other, limit: .logEnd)], needing: 1_000)
        append(100, to: first, of: here, notifier)
        #expect(notifier.wakeUps == 0)
        append(100, to: other, of: elsewhere, notifier)
        #expect(notifier.wakeUps == 0)
        append(100, to: second, of: there, notifier)
        #expect(notifier.wakeUps == 1)
        notifier.unregister(waiter)
        notifier.unregister(bystander)
    }

    @Test("A consumer reading to the high watermark wakes when it moves, not at the append below it")
    func highWatermarkReaders() {
        let notifier = AppendNotifier()
        let log = FakeLog()
        let consumer = notifier.register([.init(here, log: log, limit: .highWatermark)], needing: 1)
        let follower = notifier.register([.init(here, log: log, limit: .logEnd)], needing: 1)
        log.append(500, commit: false)
        notifier.appended(to: here)
        #expect(notifier.wakeUps == 1, "the follower, which reads to the log end")
        log.commit()
        notifier.appended(to: here)
        #expect(notifier.wakeUps == 2)
        notifier.unregister(consumer)
        notifier.unregister(follower)
    }

    @Test("Appends between taking the watches (before the read) and registering count: enough of them signal at once")
    func appendsBeforeRegistering() async {
        let notifier = AppendNotifier()
        let log = FakeLog()
        let watch = AppendNotifier.Watch(here, log: log, limit: .logEnd)
        log.append(100)
        notifier.appended(to: here)  // nobody registered yet
        let short = notifier.register([watch], needing: 200)
        log.append(300)
        let enough = notifier.register([watch], needing: 200)
        await enough.wait()  // returns: signalled by register
        #expect(notifier.wakeUps == 0)
        notifier.appended(to: here)
        #expect(notifier.wakeUps == 1, "the first waiter, by the append it missed no byte of")
        notifier.unregister(short)
        notifier.unregister(enough)
    }

    @Test("A partition the broker did not have when the watches were taken (created since?) does not wait")
    func unknownPartition() async {
        let notifier = AppendNotifier()
        let waiter = notifier.register([.init(here, log: nil, limit: .logEnd)], needing: 1 << 20)
        await waiter.wait()  // returns: signalled by register
        notifier.unregister(waiter)
    }

    @Test("A parked fetch with min_bytes is not woken by appends that do not bring them, and returns once one does")
    func brokerWakesOnlySatisfiableFetches() async throws {
        try await TestBroker.with { broker in
            let consumer = try await TestConnection(port: broker.port)
            let producer = try await TestConnection(port: broker.port)
            _ = try await ProduceFetchTests.createTopic("waits", partitions: 1, on: producer)
            let notifier = broker.broker.dispatcher.notifier
            let started = ContinuousClock.now
            async let fetched = consumer.request(
                ProduceFetchTests.fetchRequest("waits", offset: 0, maxWaitMs: 60_000, minBytes: 50_000), version: 12, expecting: FetchResponse.self)
            while notifier.waitingFetches == 0 && ContinuousClock.now - started < .seconds(30) {
                try await Task.sleep(for: .milliseconds(5))
            }
            for index in 0..<5 {
                #expect(try await ProduceFetchTests.produce([try makeBatch(count: 1, startingAt: index)], to: "waits", on: producer).errorCode == 0)
            }
            #expect(notifier.wakeUps == 0)
            #expect(notifier.waitingFetches == 1)
            let big = try FetchLimitsTests.batch(bytes: 60_000)
            #expect(try await ProduceFetchTests.produce([big], to: "waits", on: producer).errorCode == 0)
            let partition = try #require(try await fetched.responses.first?.partitions.first)
            #expect(try ProduceFetchTests.values(in: partition.records, from: 0).prefix(5) == ["value-0", "value-1", "value-2", "value-3", "value-4"])
            #expect(notifier.wakeUps == 1)
            #expect(ContinuousClock.now - started < .seconds(30), "the append did not wake the fetch")
            try await consumer.close()
            try await producer.close()
        }
    }
}
