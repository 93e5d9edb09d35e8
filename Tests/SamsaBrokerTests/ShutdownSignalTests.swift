import Foundation
import Glibc
import Testing

/// `samsa broker` runs in a swift-service-lifecycle `ServiceGroup`: SIGTERM or SIGINT starts a graceful
/// shutdown (tested in `BrokerProcessTests.sigtermIsClean`); a second one while that shutdown hangs
/// exits at once.
@Suite("samsa broker shutdown signals")
struct ShutdownSignalTests {
    @Test("a second SIGTERM while the shutdown waits on an unresponsive ZooKeeper exits at once with 143")
    func secondSignalExits() async throws {
        let zooKeeper = try StandaloneZooKeeper()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-signal-\(UUID().uuidString)").path
        var broker: BrokerProcessTests.BrokerProcess?
        defer {
            broker?.signal(SIGKILL)
            zooKeeper.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        try await zooKeeper.waitUntilServing()
        // A long session: the broker's stop waits on coordination for seconds, not milliseconds.
        let started = try BrokerProcessTests.BrokerProcess(
            directory: directory,
            extra: ["--coordination", "zookeeper://127.0.0.1:\(zooKeeper.port)/samsa/signal", "--session-timeout-ms", "30000"])
        broker = started
        zooKeeper.pause()
        kill(started.process.processIdentifier, SIGTERM)
        try await Task.sleep(for: .milliseconds(500))
        #expect(started.process.isRunning, "the graceful stop should still be waiting on the paused ZooKeeper")
        let second = ContinuousClock.now
        started.signal(SIGTERM)
        #expect(ContinuousClock.now - second < .seconds(5))
        #expect(started.process.terminationReason == .exit && started.process.terminationStatus == 143)
        broker = nil
        zooKeeper.resume()
    }
}
