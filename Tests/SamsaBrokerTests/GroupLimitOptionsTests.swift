import Foundation
import Glibc
import SamsaProtocol
import Testing
import SamsaTestSupport

/// `samsa broker`'s group, offset and producer limits, from the command line and from `--config`.
@Suite("samsa broker group and offset limit options")
struct GroupLimitOptionsTests {
    @Test("group-max-session-timeout-ms and offset-metadata-max-bytes from --config hold at the broker")
    func limitsFromConfig() async throws {
        let root = temporaryPath("samsa-limits")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try """
            dir = \(root)/data
            listen = 127.0.0.1:0
            group-max-session-timeout-ms = 10000
            offset-metadata-max-bytes = 10
            producer-id-expiration-ms = 60000
            group-max-pending-members = 10

            """.write(toFile: "\(root)/broker.conf", atomically: true, encoding: .utf8)
        let broker = try BrokerProcessTests.BrokerProcess(arguments: ["broker", "--config", "\(root)/broker.conf", "--group-min-session-timeout-ms", "2000"])
        defer { broker.signal(SIGTERM) }
        let connection = try await TestConnection(port: broker.port)
        for (sessionMs, expected) in [(Int32(1999), ErrorCode.invalidSessionTimeout), (10_001, .invalidSessionTimeout), (2000, .none)] {
            let request = GroupStringLimitTests.joinRequest(group: "g\(sessionMs)", sessionMs: sessionMs)
            let response = try await connection.request(request, version: 3, expecting: JoinGroupResponse.self)
            #expect(response.errorCode == expected.rawValue, "session \(sessionMs) ms")
        }
        _ = try await ProduceFetchTests.createTopic("t", partitions: 1, on: connection)
        for (metadata, expected) in [(String(repeating: "m", count: 10), ErrorCode.none), (String(repeating: "m", count: 11), .offsetMetadataTooLarge)] {
            let commit = OffsetCommitLimitTests.commit(group: "c", topic: "t", partitions: [(0, 1, metadata)])
            let response = try await connection.request(commit, version: 8, expecting: OffsetCommitResponse.self)
            #expect(response.topics.first?.partitions.first?.errorCode == expected.rawValue)
        }
        try await connection.close()
    }

    @Test("group-max-size (KIP-389): a new member of a full group gets GROUP_MAX_SIZE_REACHED, before and after KIP-394's member id; a member in it rejoins")
    func groupMaxSize() async throws {
        let root = temporaryPath("samsa-limits")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "group-max-size = 1\n".write(toFile: "\(root)/broker.conf", atomically: true, encoding: .utf8)
        let broker = try BrokerProcessTests.BrokerProcess(arguments: ["broker", "--dir", "\(root)/data", "--listen", "127.0.0.1:0", "--config", "\(root)/broker.conf"])
        defer { broker.signal(SIGTERM) }
        let first = try await TestConnection(port: broker.port)
        let joined = try await first.request(GroupStringLimitTests.joinRequest(group: "full", sessionMs: 10_000), version: 3, expecting: JoinGroupResponse.self)
        #expect(joined.errorCode == 0 && !joined.memberId.isEmpty, "\(joined)")
        let second = try await TestConnection(port: broker.port)
        for version in [Int16(3), 4, 7] {
            let refused = try await second.request(
                GroupStringLimitTests.joinRequest(group: "full", sessionMs: 10_000), version: version, expecting: JoinGroupResponse.self)
            #expect(refused.errorCode == ErrorCode.groupMaxSizeReached.rawValue, "v\(version): \(refused)")
        }
        // The member already in it is not refused: its rejoin completes the (one-member) rebalance.
        let rejoined = try await first.request(
            GroupStringLimitTests.joinRequest(group: "full", member: joined.memberId, sessionMs: 10_000), version: 3, expecting: JoinGroupResponse.self)
        #expect(rejoined.errorCode == 0 && rejoined.memberId == joined.memberId, "\(rejoined)")
        // Another group is not affected.
        let other = try await second.request(GroupStringLimitTests.joinRequest(group: "other", sessionMs: 10_000), version: 3, expecting: JoinGroupResponse.self)
        #expect(other.errorCode == 0)
        try await first.close()
        try await second.close()
        let (status, stderr) = try BrokerConfigFileTests.run(["broker", "--dir", "\(root)/data2", "--group-max-size", "0"])
        #expect(status != 0 && stderr.contains("group-max-size"), "\(stderr)")
    }

    @Test("a minimum session timeout above the maximum is refused before anything starts")
    func inconsistentBounds() throws {
        let root = temporaryPath("samsa-limits")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (status, stderr) = try BrokerConfigFileTests.run([
            "broker", "--dir", "\(root)/data", "--group-min-session-timeout-ms", "9000", "--group-max-session-timeout-ms", "8000",
        ])
        #expect(status != 0)
        #expect(stderr.contains("group-min-session-timeout-ms"), "\(stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(root)/data"))
    }
}
