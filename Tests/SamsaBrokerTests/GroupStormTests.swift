import SamsaWaiting
import NIOCore
import NIOEmbedded
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// Group storms and careless members (issue 20, item 7 and the session timeouts): member ids issued but
/// never used expire and are capped, groups left empty without offsets are forgotten, and session
/// timeouts are held to Kafka's bounds.
@Suite("Group coordinator under storms")
struct GroupStormTests {
    static func join(_ group: String, member: String = "", sessionMs: Int32 = 10_000) -> JoinGroupRequest {
        GroupStringLimitTests.joinRequest(group: group, member: member, sessionMs: sessionMs)
    }

    /// Groups held, member ids pending and timers armed.
    static func counts(_ groups: GroupCoordinator) async -> [Int] {
        let counts = await groups.counts
        return [counts.groups, counts.pendingMembers, counts.timers]
    }

    /// Runs `body` with a coordinator on a loop whose clock the test moves (`advanceTime` fires the
    /// timers it passes), then stops both (a testing loop freed with timers armed traps). Its groups'
    /// first rebalances complete as soon as every member joined unless `limits` say otherwise.
    static func withCoordinator(
        limits: GroupLimits = .immediate, offsets: Set<String> = [], store: any GroupMetadataStore = NoGroupMetadataStore(),
        _ body: (GroupCoordinator, NIOAsyncTestingEventLoop) async throws -> Void
    ) async throws {
        let loop = NIOAsyncTestingEventLoop()
        let groups = GroupCoordinator(limits: limits, hasOffsets: { offsets.contains($0) }, store: store, loop: loop)
        do {
            try await body(groups, loop)
        } catch {
            await groups.stop()
            await loop.shutdownGracefully()
            throw error
        }
        await groups.stop()
        await loop.shutdownGracefully()
    }

    @Test("10,000 JoinGroup v4 to new 32,767-byte group ids keep no group, and their member ids expire after the session timeout")
    func pendingMembersExpire() async throws {
        try await Self.withCoordinator { groups, loop in
            let longGroup = String(repeating: "s", count: 32_000)
            var issued: [String] = []
            for index in 0..<10_000 {
                let response = await groups.join(Self.join("\(longGroup)\(index)"), version: 4, clientId: "storm")
                #expect(response.errorCode == ErrorCode.memberIdRequired.rawValue)
                issued.append(response.memberId)
            }
            #expect(await Self.counts(groups) == [0, 10_000, 1], "one timer, for the oldest")
            await loop.advanceTime(by: .milliseconds(9_999))
            #expect(await groups.counts.pendingMembers == 10_000, "not before the session timeout")
            await loop.advanceTime(by: .milliseconds(1))
            #expect(await Self.counts(groups) == [0, 0, 0])
            // An expired id is not accepted any more.
            let late = await groups.join(Self.join("\(longGroup)0", member: issued[0]), version: 4, clientId: "storm")
            #expect(late.errorCode == ErrorCode.unknownMemberId.rawValue)
            #expect(await Self.counts(groups) == [0, 0, 0])
        }
    }

    @Test("Past the cap of pending member ids the oldest is forgotten; a fresh one still joins")
    func pendingMembersCapped() async throws {
        var limits = GroupLimits.immediate
        limits.maxPendingMembers = 100
        try await Self.withCoordinator(limits: limits) { groups, _ in
            var issued: [String] = []
            for index in 0..<1000 {
                issued.append(await groups.join(Self.join("g\(index)"), version: 4, clientId: "storm").memberId)
            }
            #expect(await groups.counts.pendingMembers == 100)
            let oldest = await groups.join(Self.join("g0", member: issued[0]), version: 4, clientId: "storm")
            #expect(oldest.errorCode == ErrorCode.unknownMemberId.rawValue)
            let newest = await groups.join(Self.join("g999", member: issued[999]), version: 4, clientId: "storm")
            #expect(newest.errorCode == 0 && newest.generationId == 1)
            // An id is good only for the group it was issued for.
            let elsewhere = await groups.join(Self.join("g1", member: issued[998]), version: 4, clientId: "storm")
            #expect(elsewhere.errorCode == ErrorCode.unknownMemberId.rawValue)
        }
    }

    @Test("A member that stops heartbeating is dropped after its session; its group goes unless it has offsets")
    func emptyGroupsAreForgotten() async throws {
        try await Self.withCoordinator(offsets: ["kept"]) { groups, loop in
            for group in ["kept", "gone"] {
                let joined = await groups.join(Self.join(group, sessionMs: 6000), version: 3, clientId: "c")
                #expect(joined.errorCode == 0 && joined.generationId == 1)
            }
            #expect(await groups.counts.groups == 2)
            await loop.advanceTime(by: .milliseconds(6000))
            #expect(await groups.counts.groups == 1)
            #expect(await groups.list().map(\.groupId) == ["kept"])
            #expect(await groups.describe("kept")?.state == "Empty")
            #expect(await groups.describe("gone") == nil)
            // A leave empties a group the same way.
            let joined = await groups.join(Self.join("left"), version: 3, clientId: "c")
            #expect(await groups.leave(groupId: "left", memberIds: [joined.memberId]) == [.none])
            #expect(await groups.describe("left") == nil)
            #expect(await Self.counts(groups) == [1, 0, 0], "no timer left")
        }
    }

    @Test("Session timeouts outside 6,000...1,800,000 ms get INVALID_SESSION_TIMEOUT", arguments: [Int32(0), 5_999, 1_800_001, Int32.max])
    func sessionTimeoutBounds(sessionMs: Int32) async throws {
        try await Self.withCoordinator { groups, _ in
            let refused = await groups.join(Self.join("g", sessionMs: sessionMs), version: 3, clientId: "c")
            #expect(refused.errorCode == ErrorCode.invalidSessionTimeout.rawValue)
            #expect(await Self.counts(groups) == [0, 0, 0])
        }
    }

    @Test("The bounds themselves are accepted", arguments: [Int32(6_000), 1_800_000])
    func sessionTimeoutBoundsAccepted(sessionMs: Int32) async throws {
        try await Self.withCoordinator { groups, _ in
            #expect(await groups.join(Self.join("g", sessionMs: sessionMs), version: 3, clientId: "c").errorCode == 0)
        }
    }

    // MARK: - Through the wire (the broker's coordinator and its timers)

    @Test("Through a broker: a session of 2^31-1 ms is refused; an unused member id expires; a group left empty is not listed")
    func throughTheBroker() async throws {
        try await TestBroker.with { broker in
            let connection = try await TestConnection(port: broker.port)
            let forever = try await connection.request(Self.join("slow", sessionMs: Int32.max), version: 3, expecting: JoinGroupResponse.self)
            #expect(forever.errorCode == ErrorCode.invalidSessionTimeout.rawValue)

            let issued = try await connection.request(Self.join("pending", sessionMs: 30_000), version: 4, expecting: JoinGroupResponse.self)
            #expect(issued.errorCode == ErrorCode.memberIdRequired.rawValue)
            await broker.broker.dispatcher.groups.expire(after: .seconds(31))
            let late = try await connection.request(Self.join("pending", member: issued.memberId), version: 4, expecting: JoinGroupResponse.self)
            #expect(late.errorCode == ErrorCode.unknownMemberId.rawValue)

            let joined = try await connection.request(Self.join("transient"), version: 3, expecting: JoinGroupResponse.self)
            #expect(joined.errorCode == 0)
            var leave = LeaveGroupRequest()
            leave.groupId = "transient"
            leave.memberId = joined.memberId
            #expect(try await connection.request(leave, version: 1, expecting: LeaveGroupResponse.self).errorCode == 0)
            let listed = try await connection.request(ListGroupsRequest(), version: 4, expecting: ListGroupsResponse.self)
            #expect(listed.groups.map(\.groupId) == [])
            try await connection.close()
        }
    }
}

extension GroupLimits {
    /// Kafka's limits without `group.initial.rebalance.delay.ms` (tests that form groups).
    static var immediate: GroupLimits {
        var limits = GroupLimits()
        limits.initialRebalanceDelay = .zero
        return limits
    }
}

extension GroupStormTests {
    @Test("The generation after Int32.max is 1, not a trap")
    func generationWraps() {
        #expect(GroupCoordinator.Group.generation(after: 1) == 2)
        #expect(GroupCoordinator.Group.generation(after: .max) == 1)
    }
}
