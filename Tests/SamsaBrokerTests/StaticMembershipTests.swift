import NIOCore
import NIOEmbedded
import SamsaProtocol
import Testing
@testable import SamsaBroker

/// Static membership (KIP-345) and `group.initial.rebalance.delay.ms` in the group coordinator, on a
/// testing loop's clock.
@Suite("Static membership", .timeLimit(.minutes(1)))
struct StaticMembershipTests {
    typealias Deadlines = GroupDeadlineTests

    static func join(_ group: String, member: String = "", instance: String?, protocols: [String] = ["range"], sessionMs: Int32 = 10_000) -> JoinGroupRequest {
        var request = GroupStringLimitTests.joinRequest(group: group, member: member, instance: instance, sessionMs: sessionMs)
        request.protocols = protocols.map { name in
            var offered = JoinGroupRequest.JoinGroupRequestProtocol()
            offered.name = name
            offered.metadata = ByteBuffer(bytes: [1])
            return offered
        }
        return request
    }

    /// A Stable group of two static members, "a" (the leader) and "b", each assigned its own byte.
    /// (The two join within the group's initial rebalance delay, Kafka's 3 s, which the second one's join extends by 3 s.)
    static func stableStatic(_ groups: GroupCoordinator, _ loop: NIOAsyncTestingEventLoop, protocols: [String] = ["range"]) async -> (a: String, b: String) {
        let first = Task { await groups.join(Self.join("g", instance: "a", protocols: protocols), version: 5, clientId: "c") }
        await Deadlines.untilMembers(1, in: "g", groups)
        let second = Task { await groups.join(Self.join("g", instance: "b", protocols: protocols), version: 5, clientId: "c") }
        await Deadlines.untilMembers(2, in: "g", groups)
        await loop.advanceTime(by: .milliseconds(6_000))
        let (a, b) = (await first.value, await second.value)
        #expect(a.generationId == 1 && b.generationId == 1 && a.leader == a.memberId)
        #expect(a.memberId.hasPrefix("a-") && b.memberId.hasPrefix("b-"), "a static member's id starts with its instance id")
        #expect(a.members.map(\.groupInstanceId) == ["a", "b"])
        let syncing = Task { await groups.sync(Deadlines.sync("g", member: b.memberId, generation: 1)) }
        while await groups.waiting(in: "g") != [b.memberId] { await Task.yield() }
        let assignments = [a.memberId: [1], b.memberId: [2]] as [String: [UInt8]]
        #expect(await groups.sync(GroupPersistenceTests.sync("g", member: a.memberId, generation: 1, assigning: assignments)).assignment == ByteBuffer(bytes: [1]))
        #expect(await syncing.value.assignment == ByteBuffer(bytes: [2]))
        return (a.memberId, b.memberId)
    }

    @Test("A static member rejoining with no member id while Stable replaces its old id, keeps its assignment, and the group does not rebalance; the old id is fenced")
    func rejoinWithoutRebalance() async throws {
        let store = RecordingGroupStore()
        try await GroupStormTests.withCoordinator(limits: GroupLimits(), store: store) { groups, loop in
            let (a, b) = await Self.stableStatic(groups, loop)
            let rejoined = await groups.join(Self.join("g", instance: "b"), version: 5, clientId: "c")
            #expect(rejoined.errorCode == 0 && rejoined.generationId == 1 && rejoined.leader == a && rejoined.members.isEmpty)
            #expect(rejoined.memberId != b && rejoined.memberId.hasPrefix("b-"))
            #expect(await groups.describe("g")?.state == "Stable")
            // The replacement is recorded.
            #expect(store.written.last?.members.map(\.memberId) == [a, rejoined.memberId])
            #expect(store.written.last?.members.map(\.instanceId) == ["a", "b"])
            #expect(store.written.last?.members.last?.assignment == ByteBuffer(bytes: [2]))
            // The new id syncs to its old assignment; the other member sees nothing.
            #expect(await groups.sync(Deadlines.sync("g", member: rejoined.memberId, generation: 1)).assignment == ByteBuffer(bytes: [2]))
            #expect(await groups.heartbeat(groupId: "g", memberId: a, instanceId: "a", generation: 1) == .none)
            #expect(await groups.heartbeat(groupId: "g", memberId: rejoined.memberId, instanceId: "b", generation: 1) == .none)
            // The old member id: fenced with its instance id, unknown without.
            #expect(await groups.heartbeat(groupId: "g", memberId: b, instanceId: "b", generation: 1) == .fencedInstanceId)
            var oldSync = Deadlines.sync("g", member: b, generation: 1)
            oldSync.groupInstanceId = "b"
            #expect(await groups.sync(oldSync).errorCode == ErrorCode.fencedInstanceId.rawValue)
            #expect(await groups.commitCheck(groupId: "g", memberId: b, instanceId: "b", generation: 1) == .fencedInstanceId)
            #expect(await groups.join(Self.join("g", member: b, instance: "b"), version: 5, clientId: "c").errorCode == ErrorCode.fencedInstanceId.rawValue)
            #expect(await groups.leave(groupId: "g", members: [(b, "b")]) == [.fencedInstanceId])
            #expect(await groups.heartbeat(groupId: "g", memberId: b, generation: 1) == .unknownMemberId)
            #expect(await groups.commitCheck(groupId: "g", memberId: b, generation: 1) == .unknownMemberId)
            #expect(await groups.heartbeat(groupId: "g", memberId: a, instanceId: "z", generation: 1) == .unknownMemberId)
            #expect(await groups.describe("g")?.state == "Stable")
        }
    }

    @Test("The leader rejoining as a static member is answered with the old leader id (it does not reassign) and the group does not rebalance")
    func leaderRejoins() async throws {
        try await GroupStormTests.withCoordinator(limits: GroupLimits()) { groups, loop in
            let (a, b) = await Self.stableStatic(groups, loop)
            let rejoined = await groups.join(Self.join("g", instance: "a"), version: 5, clientId: "c")
            #expect(rejoined.errorCode == 0 && rejoined.generationId == 1 && rejoined.leader == a && rejoined.leader != rejoined.memberId)
            #expect(rejoined.members.isEmpty)
            #expect(await groups.sync(Deadlines.sync("g", member: rejoined.memberId, generation: 1)).assignment == ByteBuffer(bytes: [1]))
            #expect(await groups.heartbeat(groupId: "g", memberId: b, generation: 1) == .none)
            #expect(await groups.snapshot(of: "g")?.leader == rejoined.memberId, "the new id leads the next rebalance")
        }
    }

    @Test("A static member rejoining with protocols that change the group's protocol makes it rebalance")
    func protocolChangeRebalances() async throws {
        try await GroupStormTests.withCoordinator(limits: GroupLimits()) { groups, loop in
            let (a, b) = await Self.stableStatic(groups, loop, protocols: ["range", "roundrobin"])
            let rejoining = Task { await groups.join(Self.join("g", instance: "b", protocols: ["roundrobin"]), version: 5, clientId: "c") }
            while await groups.describe("g")?.state != "PreparingRebalance" { await Task.yield() }
            #expect(await groups.heartbeat(groupId: "g", memberId: a, generation: 1) == .rebalanceInProgress)
            let leader = await groups.join(Self.join("g", member: a, instance: "a", protocols: ["range", "roundrobin"]), version: 5, clientId: "c")
            let rejoined = await rejoining.value
            #expect(leader.generationId == 2 && rejoined.generationId == 2 && leader.protocolName == "roundrobin")
            #expect(rejoined.memberId != b)
        }
    }

    @Test("A failed store of the replacement answers the join with its error, and the old member id stands")
    func replacementNotStored() async throws {
        let store = RecordingGroupStore()
        try await GroupStormTests.withCoordinator(limits: GroupLimits(), store: store) { groups, loop in
            let (_, b) = await Self.stableStatic(groups, loop)
            store.answer(.notEnoughReplicas)
            let rejoined = await groups.join(Self.join("g", instance: "b"), version: 5, clientId: "c")
            #expect(rejoined.errorCode == ErrorCode.coordinatorNotAvailable.rawValue)
            #expect(await groups.heartbeat(groupId: "g", memberId: b, instanceId: "b", generation: 1) == .none)
            #expect(await groups.describe("g")?.state == "Stable")
        }
    }

    @Test("A static member whose session runs out is removed and the group rebalances; LeaveGroup by instance id removes one too")
    func sessionAndLeave() async throws {
        try await GroupStormTests.withCoordinator(limits: GroupLimits()) { groups, loop in
            let (a, b) = await Self.stableStatic(groups, loop)
            #expect(await groups.leave(groupId: "g", members: [("", "nobody")]) == [.unknownMemberId])
            #expect(await groups.leave(groupId: "g", members: [("", "b")]) == [.none])
            #expect(await Deadlines.members("g", groups) == [a])
            #expect(await groups.heartbeat(groupId: "g", memberId: a, instanceId: "a", generation: 1) == .rebalanceInProgress)
            #expect(await groups.heartbeat(groupId: "g", memberId: b, instanceId: "b", generation: 1) == .unknownMemberId)
            let alone = await groups.join(Self.join("g", member: a, instance: "a"), version: 5, clientId: "c")
            #expect(alone.generationId == 2)
            _ = await groups.sync(Deadlines.sync("g", member: a, generation: 2))
            await loop.advanceTime(by: .milliseconds(10_000))
            #expect(await groups.describe("g") == nil, "its session ran out: the group is empty (no offsets: forgotten)")
        }
    }

    @Test("A static member that does not rejoin a rebalance stays in it (its share assigned by the leader); a dynamic one is removed")
    func absentStaticMemberStays() async throws {
        try await GroupStormTests.withCoordinator(limits: GroupLimits()) { groups, loop in
            let (a, b) = await Self.stableStatic(groups, loop)
            // A third, dynamic member joins; only "a" rejoins (b keeps heartbeating, as a client whose rebalance callback is slow).
            let third = Task { await groups.join(Self.join("g", instance: nil), version: 3, clientId: "d") }
            await Deadlines.untilMembers(3, in: "g", groups)
            let leader = Task { await groups.join(Self.join("g", member: a, instance: "a"), version: 5, clientId: "c") }
            while await groups.waiting(in: "g").count < 2 { await Task.yield() }
            await loop.advanceTime(by: .milliseconds(5_000))
            #expect(await groups.heartbeat(groupId: "g", memberId: b, instanceId: "b", generation: 1) == .rebalanceInProgress)
            await loop.advanceTime(by: .milliseconds(5_000))
            let answered = await leader.value
            #expect(answered.generationId == 2 && answered.leader == a)
            let dynamic = await third.value.memberId
            #expect(Set(answered.members.map(\.memberId)) == [a, b, dynamic])
            #expect(await groups.heartbeat(groupId: "g", memberId: b, instanceId: "b", generation: 1) == .illegalGeneration)
        }
    }

    @Test("The first rebalance of an empty group waits group.initial.rebalance.delay.ms, extended by each new member's join")
    func initialDelay() async throws {
        var limits = GroupLimits()
        limits.initialRebalanceDelay = .milliseconds(3_000)
        try await GroupStormTests.withCoordinator(limits: limits) { groups, loop in
            let first = Task { await groups.join(Deadlines.join("g", sessionMs: 10_000), version: 3, clientId: "a") }
            await Deadlines.untilMembers(1, in: "g", groups)
            await loop.advanceTime(by: .milliseconds(1_000))
            let second = Task { await groups.join(Deadlines.join("g", sessionMs: 10_000), version: 3, clientId: "b") }
            await Deadlines.untilMembers(2, in: "g", groups)
            // At 3 s a member had joined during the delay: it waits 3 s more.
            await loop.advanceTime(by: .milliseconds(4_999))
            #expect(await groups.describe("g")?.state == "PreparingRebalance")
            await loop.advanceTime(by: .milliseconds(1))
            let (one, two) = (await first.value, await second.value)
            #expect(one.generationId == 1 && two.generationId == 1 && one.members.count == 2)
        }
    }

    @Test("Members joining one after another extend the initial delay no further than the rebalance timeout")
    func initialDelayBounded() async throws {
        var limits = GroupLimits()
        limits.initialRebalanceDelay = .milliseconds(3_000)
        try await GroupStormTests.withCoordinator(limits: limits) { groups, loop in
            var joins: [Task<JoinGroupResponse, Never>] = []
            var now = 0
            for (index, at) in [0, 1_000, 4_000, 7_000, 9_500].enumerated() {
                await loop.advanceTime(by: .milliseconds(Int64(at - now)))
                now = at
                joins.append(Task { await groups.join(Deadlines.join("g", sessionMs: 10_000), version: 3, clientId: "c\(index)") })
                await Deadlines.untilMembers(index + 1, in: "g", groups)
            }
            await loop.advanceTime(by: .milliseconds(499))
            #expect(await groups.describe("g")?.state == "PreparingRebalance")
            await loop.advanceTime(by: .milliseconds(1))
            for join in joins { #expect(await join.value.generationId == 1) }
        }
    }
}
