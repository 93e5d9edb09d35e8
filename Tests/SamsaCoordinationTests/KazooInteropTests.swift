import Foundation
import SamsaCoordination
import SamsaTestSupport
import Testing

/// Nodes written through Samsa's ZooKeeper client read by an independent client (Python's kazoo),
/// and the other way round, against the same real ZooKeeper.
@Suite("Interop with kazoo", .offCooperativePool, .timeLimit(.minutes(2)))
struct KazooInteropTests {
    static let python = ProcessInfo.processInfo.environment["SAMSA_PYTHON"] ?? "python3"

    /// Runs a kazoo script with `servers` and `root` as arguments; returns its JSON output.
    func kazoo(_ script: String, servers: [String], root: String) async throws -> [String: Any] {
        let arguments = [Self.python, "-c", script, servers.joined(separator: ","), root]
        // Waiting for the child blocks: on a thread of its own, not the cooperative pool.
        let (status, data, errorText) = try await blocking { () throws -> (Int32, Data, String) in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
            let output = Pipe(), errors = Pipe()
            process.standardOutput = output
            process.standardError = errors
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, data, errorText)
        }
        try #require(status == 0, "kazoo (installed by scripts/test.sh) failed: \(errorText)")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("kazoo reads what Samsa wrote: data, versions, ephemeral owner, sequence names")
    func kazooReadsSamsa() async throws {
        let servers = try await SharedZooKeeper.shared.servers()
        let session = try await ZooKeeperSession.connect(servers: servers, sessionTimeout: .seconds(10))
        let root = testRoot()
        _ = try await session.create(root, data: Array("samsa-root".utf8))
        _ = try await session.create(root + "/config", data: Array("v1".utf8))
        try await session.setData(root + "/config", data: Array("v2".utf8))
        _ = try await session.create(root + "/alive", data: [], mode: .ephemeral)
        let sequential = try await session.create(root + "/seq-", data: [0, 255], mode: .persistentSequential)
        let read = try await kazoo(
            """
            import sys, json
            from kazoo.client import KazooClient
            zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=10)
            root = sys.argv[2]
            data, stat = zk.get(root + "/config")
            _, alive = zk.get(root + "/alive")
            seq, _ = zk.get(root + "/seq-0000000002")
            print(json.dumps({"data": data.decode(), "version": stat.version, "owner": alive.ephemeralOwner,
                              "children": sorted(zk.get_children(root)), "seq": list(seq)}))
            zk.stop()
            """, servers: servers, root: root)
        #expect(read["data"] as? String == "v2")
        #expect(read["version"] as? Int == 1)
        #expect((read["owner"] as? NSNumber)?.int64Value == session.sessionID)
        #expect(read["children"] as? [String] == ["alive", "config", "seq-0000000002"])
        #expect(sequential == root + "/seq-0000000002")
        #expect(read["seq"] as? [Int] == [0, 255])
        await session.close()
    }

    @Test("Samsa reads what kazoo wrote, and sees kazoo's ephemeral node go with its session")
    func samsaReadsKazoo() async throws {
        let servers = try await SharedZooKeeper.shared.servers()
        let session = try await ZooKeeperSession.connect(servers: servers, sessionTimeout: .seconds(10))
        let root = testRoot()
        let written = try await kazoo(
            """
            import sys, json
            from kazoo.client import KazooClient
            zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=10)
            root = sys.argv[2]
            zk.create(root + "/k", b"from-kazoo", makepath=True)
            zk.set(root + "/k", b"again"); zk.set(root + "/k", b"final")
            member = zk.create(root + "/member-", b"m", ephemeral=True, sequence=True)
            tx = zk.transaction(); tx.create(root + "/t1", b"1"); tx.create(root + "/t2", b"2"); tx.commit()
            print(json.dumps({"member": member, "session": zk.client_id[0]}))
            zk.stop()
            """, servers: servers, root: root)
        let (data, stat) = try await session.data(root + "/k")
        #expect(String(decoding: data, as: UTF8.self) == "final" && stat.version == 2)
        #expect(try await session.data(root + "/t2").data == Array("2".utf8))
        // kazoo's session closed when it stopped: its ephemeral member is gone.
        let member = try #require(written["member"] as? String)
        #expect(member.hasPrefix(root + "/member-"))
        #expect(try await session.exists(member) == nil)
        #expect(Set(try await session.children(root)) == ["k", "t1", "t2"])
        await session.close()
    }
}
