import Foundation
import Glibc
import SamsaProtocol
import SamsaTestSupport
import Synchronization
import Testing

/// Issue 22's acceptance test with real processes: a 3-node ZooKeeper ensemble, three `samsa broker`
/// processes, a topic of 6 partitions (RF 3, min ISR 2) written throughout by an acks=all producer, and
/// three confluent-kafka members of ONE group, each bootstrapped from a different broker
/// (Tests/Interop/group_failover.py, which records every processed record, assignment, revocation and
/// acknowledged commit, and judges them). Eager and cooperative-sticky: the broker FindCoordinator names
/// is SIGKILLed mid-consumption and restarted; static members: one is closed and restarted within its
/// session. Each partition has one owner at a time, every record is processed, only the uncommitted
/// windows twice, the committed offsets read through every broker's named coordinator are the log end,
/// the other brokers answer NOT_COORDINATOR, and a new member reads nothing.
@Suite("Consumer groups on a ZooKeeper ensemble through a coordinator's SIGKILL", .serialized)
struct GroupFailoverProcessTests {
    static let partitions: Int32 = 6

    struct Outcome: Decodable {
        var scenario: String
        var client: String
        var violations: [String: [String]]
        var figures: [String: Double]
        var ends: [String: Int64]
        var counts: [String: Int]
        var ownership: [String]
        var errors: [String]
    }

    /// The newest client through every scenario, the oldest of the matrix through the coordinator's kill.
    static let runs = ["confluent-kafka-2.16.2": ["eager", "cooperative", "static"], "confluent-kafka-2.0.2": ["eager"]]

    @Test("three members of one group on three brokers through the coordinator's SIGKILL and restart (eager, cooperative-sticky) and a static member's restart",
          arguments: runs.keys.sorted().reversed())
    func groupFailover(client: String) async throws {
        let python = try RecordsAdminClientTests.python(client)
        let began = ContinuousClock.now
        let ensemble = try await blocking { try ZooKeeperEnsemble(count: 3) }
        let root = temporaryPath("samsa-group-failover")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let brokers = try EnsembleFailoverTests.Brokers(root: root, coordination: "zookeeper://\(ensemble.connectString.joined(separator: ","))/samsa")
        // SAMSA_CLUSTER_LOG=1 keeps the brokers' and clients' logs (a failure keeps them too).
        var keep = ProcessInfo.processInfo.environment["SAMSA_CLUSTER_LOG"] != nil
        var scripts: [LineClient] = []
        defer {
            for script in scripts { script.kill() }
            brokers.killAll()
            ensemble.stopAll()
            if keep {
                FileHandle.standardError.write(Data("GroupFailoverProcessTests: logs kept in \(root)\n".utf8))
            } else {
                try? FileManager.default.removeItem(atPath: root)
            }
        }
        do {
            for id in Int32(1)...3 { try await brokers.start(id) }
            for scenario in Self.runs[client]! {
                let topic = "orders-\(scenario)"
                let admin = try await TestConnection(port: brokers.ports[1]!)
                let created = try await admin.createTopic(topic, partitions: Self.partitions, replicationFactor: 3, configs: ["min.insync.replicas": "2"])
                try await admin.close()
                #expect(created.errorCode == 0)
                try await Self.fullIsr(brokers, topic)
                let script = try LineClient(
                    [python, PythonClient.interop.appendingPathComponent("group_failover.py").path, scenario,
                     brokers.ports.keys.sorted().map { "127.0.0.1:\(brokers.ports[$0]!)" }.joined(separator: ","), topic, "\(Self.partitions)",
                     "readers-\(scenario)"],
                    errors: "\(root)/\(scenario).log")
                scripts.append(script)
                try await run(scenario, group: "readers-\(scenario)", topic: topic, script: script, brokers: brokers, client: client)
            }
            FileHandle.standardError.write(Data("GroupFailoverProcessTests \(client): whole run \(ContinuousClock.now - began)\n".utf8))
        } catch {
            keep = true
            Issue.record("\(error)\n\(brokers.logs())")
            throw error
        }
    }

    func run(_ scenario: String, group: String, topic: String, script: LineClient, brokers: EnsembleFailoverTests.Brokers, client: String) async throws {
        var killed: Int32?
        if scenario != "static" {
            _ = try await script.line("the group is consuming", timeout: .seconds(120)) { $0 == "kill-now" }
            let named = try await Self.coordinators(group, brokers)
            #expect(Set(named.values).count == 1, "every broker names the same coordinator: \(named)")
            let victim = try #require(named.values.first)
            try await brokers.signal(victim, SIGKILL)
            killed = victim
            script.write("killed")
            _ = try await script.line("the group consumes again or gives up", timeout: .seconds(90)) { $0.hasPrefix("recovered") || $0 == "not-recovered" }
            try await brokers.start(victim)
            script.write("restarted")
        }
        let last = try await script.line("the script's outcome", timeout: .seconds(200)) { $0.hasPrefix("{") }
        let outcome = try JSONDecoder().decode(Outcome.self, from: Data(last.utf8))
        for (category, found) in outcome.violations.sorted(by: { $0.key < $1.key }) {
            #expect(found.isEmpty, "\(client) \(scenario) \(category): \(found)\nownership: \(outcome.ownership)\nclient errors: \(outcome.errors)")
        }
        #expect((outcome.counts["delivered"] ?? 0) > 0)

        // Through every broker: the coordinator it names has the log end committed on every partition;
        // every other broker answers NOT_COORDINATOR.
        var ends: [Int32: Int64] = [:]
        for (key, end) in outcome.ends { ends[Int32(key)!] = end }
        var seen = ""
        do {
            _ = try await eventually("every broker names one coordinator holding the log end as the group's offsets", timeout: .seconds(30)) { () -> Bool? in
                let named = try await Self.coordinators(group, brokers)
                seen = "named \(named)"
                guard Set(named.values).count == 1, let coordinator = named.values.first, brokers.running[coordinator] != nil else { return nil }
                for id in brokers.live {
                    let connection = try await TestConnection(port: brokers.ports[id]!)
                    let fetched = try await GroupWire.fetch(group, topic: topic, partitions: ends.keys.sorted(), version: id % 2 == 0 ? 5 : 8, on: connection)
                    try await connection.close()
                    seen += "; broker \(id) answers \(fetched.error) \(fetched.offsets.sorted { $0.key < $1.key })"
                    if id == coordinator {
                        guard fetched.error == 0, fetched.offsets == ends else { return nil }
                    } else {
                        guard fetched.error == ErrorCode.notCoordinator.rawValue else { return nil }
                    }
                }
                return true
            }
        } catch {
            Issue.record("\(client) \(scenario): \(error); log ends \(ends.sorted { $0.key < $1.key }); \(seen)")
        }
        let failover = outcome.figures["failover_s"].map { "\($0) s" } ?? "none"
        FileHandle.standardError.write(Data("""
            GroupFailoverProcessTests \(outcome.client) \(scenario): coordinator \(killed.map { "broker \($0)" } ?? "not") killed; \
            failover (SIGKILL to every partition consumed and committed again, 6 s session): \(failover); figures \(outcome.figures); counts \(outcome.counts)

            """.utf8))
    }

    /// The coordinator of `group` as each live broker answers FindCoordinator (v2), retrying the
    /// coordinator-moving errors for a bounded time.
    static func coordinators(_ group: String, _ brokers: EnsembleFailoverTests.Brokers) async throws -> [Int32: Int32] {
        var named: [Int32: Int32] = [:]
        for id in brokers.live {
            named[id] = try await eventually("broker \(id) names a coordinator for \(group)", timeout: .seconds(30)) { () -> Int32? in
                let connection = try await TestConnection(port: brokers.ports[id]!)
                defer { Task { try? await connection.close() } }
                guard let answer = try await GroupWire.findCoordinator([group], version: 2, on: connection)[group], answer.error == 0 else { return nil }
                return answer.node
            }
        }
        return named
    }

    /// Waits until every partition of `topic` has a leader and all three replicas in its ISR.
    static func fullIsr(_ brokers: EnsembleFailoverTests.Brokers, _ topic: String) async throws {
        _ = try await eventually("every partition of \(topic) has a leader and a full ISR", timeout: .seconds(60)) { () -> Bool? in
            let connection = try await TestConnection(port: brokers.ports[brokers.live[0]]!)
            defer { Task { try? await connection.close() } }
            var request = MetadataRequest()
            var wanted = MetadataRequest.MetadataRequestTopic()
            wanted.name = topic
            request.topics = [wanted]
            let response = try await connection.request(request, version: 12, expecting: MetadataResponse.self)
            guard let partitions = response.topics.first?.partitions, partitions.count == Int(Self.partitions),
                partitions.allSatisfy({ $0.leaderId >= 0 && $0.isrNodes.count == 3 })
            else { return nil }
            return true
        }
    }
}

/// A client program talked to by lines: its stdout is collected line by line on a thread of its own,
/// lines are written to its stdin, its stderr goes to a file; killed by PID when the test ends.
final class LineClient: Sendable {
    private let process: Process
    private let input: Pipe
    private let lines = Mutex<[String]>([])
    private let errors: String

    init(_ arguments: [String], errors: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let output = Pipe()
        input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        self.errors = errors
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        try process.run()
        Thread.detachNewThread { [self] in
            var pending = Data()
            while true {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending = Data(pending[pending.index(after: newline)...])
                    lines.withLock { $0.append(line) }
                }
            }
        }
    }

    /// The first line printed that `matches`, waiting at most `timeout` (the client's stderr tail in the error).
    func line(_ what: String, timeout: Duration, matching matches: @escaping @Sendable (String) -> Bool) async throws -> String {
        do {
            return try await eventually(what, timeout: timeout) { lines.withLock { $0.first(where: matches) } }
        } catch {
            let tail = ((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "").suffix(3000)
            throw Timeout(what: "\(what) (running: \(process.isRunning); lines: \(lines.withLock { $0 }); stderr: \(tail))")
        }
    }

    func write(_ line: String) {
        try? input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { kill() }
}
