import SamsaWaiting
import NIOCore
import NIOPosix
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// The coordinator's deadlines as timers on its loop (issue 21: no polling sweep, no timer left
/// behind), driven by a testing loop's clock.
@Suite("Group deadlines", .timeLimit(.minutes(1)))
struct GroupDeadlineTests {
    static func join(_ group: String, member: String = "", sessionMs: Int32) -> JoinGroupRequest {
        GroupStringLimitTests.joinRequest(group: group, member: member, sessionMs: sessionMs)
    }

    static func sync(_ group: String, member: String, generation: Int32) -> SyncGroupRequest {
        var request = SyncGroupRequest()
        request.groupId = group
        request.memberId = member
        request.generationId = generation
        return request
    }

    static func members(_ group: String, _ groups: GroupCoordinator) async -> [String]? {
        await groups.describe(group)?.members.map(\.id)
    }

    /// Waits until `count` members are in the group (a join sent from another task got there).
    static func untilMembers(_ count: Int, in group: String, _ groups: GroupCoordinator) async {
        while await members(group, groups)?.count != count { await Task.yield() }
    }

    /// A stable group of one member (the leader), and a second member's join, in, waiting for it to rejoin.
    static func rebalancing(_ group: String, leaderSessionMs: Int32, _ groups: GroupCoordinator) async
        -> (leader: JoinGroupResponse, second: Task<JoinGroupResponse, Never>)
    {
        let leader = await groups.join(Self.join(group, sessionMs: leaderSessionMs), version: 3, clientId: "a")
        _ = await groups.sync(Self.sync(group, member: leader.memberId, generation: 1))
        let second = Task { await groups.join(Self.join(group, sessionMs: 6_000), version: 3, clientId: "b") }
        await Self.untilMembers(2, in: group, groups)
        return (leader, second)
    }

    @Test("A member that stops heartbeating is dropped at its session timeout, not before; a heartbeat pushes the deadline back")
    func sessionDeadline() async throws {
        try await GroupStormTests.withCoordinator { groups, loop in
            let joined = await groups.join(Self.join("g", sessionMs: 6_000), version: 3, clientId: "c")
            #expect(joined.generationId == 1)
            await loop.advanceTime(by: .milliseconds(4_000))
            #expect(await groups.heartbeat(groupId: "g", memberId: joined.memberId, generation: 1) == .none)
            // 9,999 ms: past the deadline the join set, short of the one the heartbeat set.
            await loop.advanceTime(by: .milliseconds(5_999))
            #expect(await Self.members("g", groups) == [joined.memberId])
            await loop.advanceTime(by: .milliseconds(1))
            #expect(await groups.describe("g") == nil)
            #expect(await groups.counts.timers == 0)
        }
    }

    @Test("A rebalance completes at its deadline (the longest rebalance timeout), dropping members that did not rejoin")
    func rebalanceDeadline() async throws {
        try await GroupStormTests.withCoordinator { groups, loop in
            let (first, second) = await Self.rebalancing("g", leaderSessionMs: 30_000, groups)
            // The first member heartbeats (so its session outlasts the rebalance) but never rejoins.
            await loop.advanceTime(by: .milliseconds(20_000))
            #expect(await groups.heartbeat(groupId: "g", memberId: first.memberId, generation: 1) == .rebalanceInProgress)
            await loop.advanceTime(by: .milliseconds(9_999))
            #expect(await groups.describe("g")?.state == "PreparingRebalance", "not before the deadline")
            await loop.advanceTime(by: .milliseconds(1))
            let joined = await second.value
            #expect(joined.errorCode == 0 && joined.generationId == 2 && joined.leader == joined.memberId)
            #expect(joined.members.map(\.memberId) == [joined.memberId])
            #expect(await groups.heartbeat(groupId: "g", memberId: first.memberId, generation: 2) == .unknownMemberId)
            #expect(await groups.counts.timers == 1, "the remaining member's session only")
        }
    }

    @Test("Timers come and go with what they guard: none is left once the group is gone, or the coordinator stops")
    func noTimerLeftBehind() async throws {
        try await GroupStormTests.withCoordinator { groups, _ in
            let issued = await groups.join(Self.join("g", sessionMs: 6_000), version: 4, clientId: "a")
            #expect(issued.errorCode == ErrorCode.memberIdRequired.rawValue)
            #expect(await GroupStormTests.counts(groups) == [0, 1, 1], "the pending id's")
            let first = await groups.join(Self.join("g", member: issued.memberId, sessionMs: 6_000), version: 4, clientId: "a")
            #expect(first.generationId == 1)
            #expect(await GroupStormTests.counts(groups) == [1, 0, 1], "the pending id's timer went with it; the member's session")
            let second = Task { await groups.join(Self.join("g", sessionMs: 6_000), version: 3, clientId: "b") }
            await Self.untilMembers(2, in: "g", groups)
            #expect(await groups.counts.timers == 3, "two sessions and the rebalance")
            let rejoined = await groups.join(Self.join("g", member: first.memberId, sessionMs: 6_000), version: 4, clientId: "a")
            let other = await second.value
            #expect(rejoined.generationId == 2 && other.generationId == 2)
            #expect(await groups.counts.timers == 2, "the rebalance's timer went when it completed")
            #expect(await groups.leave(groupId: "g", memberIds: [first.memberId, other.memberId]) == [.none, .none])
            #expect(await GroupStormTests.counts(groups) == [0, 0, 0])

            // Stopping answers a waiting join and disarms everything.
            let (_, waiting) = await Self.rebalancing("h", leaderSessionMs: 6_000, groups)
            await groups.stop()
            #expect(await waiting.value.errorCode == ErrorCode.notCoordinator.rawValue)
            #expect(await GroupStormTests.counts(groups) == [0, 0, 0])
        }
    }

    @Test("A SyncGroup whose request is cancelled (its connection closed) is answered at once; its member then times out like any other")
    func cancelledSync() async throws {
        try await GroupStormTests.withCoordinator { groups, loop in
            let (leader, second) = await Self.rebalancing("g", leaderSessionMs: 30_000, groups)
            #expect(await groups.join(Self.join("g", member: leader.memberId, sessionMs: 30_000), version: 3, clientId: "a").generationId == 2)
            let follower = await second.value
            // The leader never sends the assignment; the follower's client gives up.
            let syncing = Task { await groups.sync(Self.sync("g", member: follower.memberId, generation: 2)) }
            syncing.cancel()
            #expect(await syncing.value.errorCode == ErrorCode.notCoordinator.rawValue)
            await loop.advanceTime(by: .milliseconds(6_000))
            #expect(await Self.members("g", groups) == [leader.memberId])
            #expect(await groups.describe("g")?.state == "PreparingRebalance")
        }
    }

    @Test("On a broker's event loop the session timer fires by itself (no one calls in)")
    func realLoop() async throws {
        var limits = GroupLimits.immediate
        limits.minSessionTimeout = .milliseconds(1)
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let groups = GroupCoordinator(limits: limits, loop: loop)
        let joined = await groups.join(Self.join("g", sessionMs: 100), version: 3, clientId: "c")
        #expect(joined.generationId == 1)
        // The loop runs its timers in deadline order: this one, set after the join, runs after its session's.
        try await loop.scheduleTask(in: .milliseconds(100)) {}.futureResult.get()
        #expect(await groups.describe("g") == nil)
        #expect(await groups.counts.timers == 0)
    }
}
