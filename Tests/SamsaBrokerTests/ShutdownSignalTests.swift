import Foundation
import Glibc
import SamsaTestSupport
import Testing

/// `samsa broker` runs in a swift-service-lifecycle `ServiceGroup`: SIGTERM or SIGINT starts a graceful
/// shutdown (tested in `BrokerProcessTests.sigtermIsClean`); a second one while that shutdown hangs
/// exits at once.
@Suite("samsa broker shutdown signals")
struct ShutdownSignalTests {
    @Test("a second SIGTERM while the shutdown waits on an unresponsive ZooKeeper exits at once with 143")
    func secondSignalExits() async throws {
        let zooKeeper = try await blocking { try ZooKeeperEnsemble(count: 1) }
        let directory = temporaryPath("samsa-signal")
        var broker: BrokerProcessTests.BrokerProcess?
        defer {
            broker?.signal(SIGKILL)
            zooKeeper.stopAll()
            try? FileManager.default.removeItem(atPath: directory)
        }
        // A long session: the broker's stop waits on coordination for seconds, not milliseconds.
        let started = try BrokerProcessTests.BrokerProcess(
            directory: directory,
            extra: ["--coordination", "zookeeper://\(zooKeeper.connectString[0])/samsa/signal", "--session-timeout-ms", "30000"])
        broker = started
        zooKeeper.pause(0)
        kill(started.process.processIdentifier, SIGTERM)
        try await Task.sleep(for: .milliseconds(500))
        #expect(started.process.isRunning, "the graceful stop should still be waiting on the paused ZooKeeper")
        let second = ContinuousClock.now
        started.signal(SIGTERM)
        #expect(ContinuousClock.now - second < .seconds(5))
        #expect(started.process.terminationReason == .exit && started.process.terminationStatus == 143)
        broker = nil
        zooKeeper.resume(0)
    }
}
