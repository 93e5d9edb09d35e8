import NIOCore
import NIOEmbedded
import SamsaProtocol
import Synchronization
import Testing
@testable import SamsaBroker

/// A store that records what the coordinator writes, answers `error`, and while `held` keeps each
/// write waiting until `release` (a write in flight while the group moves on).
final class RecordingGroupStore: GroupMetadataStore {
    private struct State {
        var written: [GroupSnapshot] = []
        var error = ErrorCode.none
        var held = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    init(error: ErrorCode = .none, held: Bool = false) {
        state.withLock {
            $0.error = error
            $0.held = held
        }
    }

    var written: [GroupSnapshot] { state.withLock { $0.written } }

    func answer(_ error: ErrorCode) { state.withLock { $0.error = error } }

    /// Lets the writes waiting go, and the next ones through at once.
    func release() {
        let waiting = state.withLock { state in
            state.held = false
            defer { state.waiting = [] }
            return state.waiting
        }
        for waiter in waiting { waiter.resume() }
    }

    /// Waits until `count` writes have been made.
    func untilWritten(_ count: Int) async {
        while written.count < count { await Task.yield() }
    }

    func store(_ group: GroupSnapshot) async -> ErrorCode {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                state.written.append(group)
                guard state.held else { return true }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
        return state.withLock { $0.error }
    }
}

/// The group coordinator's persistence hooks (issue 22): its groups' metadata is written where Kafka's
/// `storeGroup` writes it, and a coordinator taking over (`load`) carries the members on.
@Suite("Group persistence", .timeLimit(.minutes(1)))
struct GroupPersistenceTests {
    typealias Deadlines = GroupDeadlineTests

    static func sync(_ group: String, member: String, generation: Int32, assigning assignments: [String: [UInt8]] = [:]) -> SyncGroupRequest {
        var request = Deadlines.sync(group, member: member, generation: generation)
        request.assignments = assignments.sorted { $0.key < $1.key }.map { id, bytes in
            var assignment = SyncGroupRequest.SyncGroupRequestAssignment()
            assignment.memberId = id
            assignment.assignment = ByteBuffer(bytes: bytes)
            return assignment
        }
        return request
    }

    /// Two members joined at generation 1 (within the group's initial rebalance delay, Kafka's 3 s, which the second one's join extends by 3 s):
    /// the leader and a follower.
    static func twoMembers(_ group: String, _ groups: GroupCoordinator, _ loop: NIOAsyncTestingEventLoop) async
        -> (leader: JoinGroupResponse, follower: JoinGroupResponse)
    {
        let first = Task { await groups.join(Deadlines.join(group, sessionMs: 10_000), version: 3, clientId: "a") }
        await Deadlines.untilMembers(1, in: group, groups)
        let joining = Task { await groups.join(Deadlines.join(group, sessionMs: 10_000), version: 3, clientId: "b") }
        await Deadlines.untilMembers(2, in: group, groups)
        await loop.advanceTime(by: .milliseconds(6_000))
        let (leader, second) = (await first.value, await joining.value)
        #expect(leader.generationId == 1 && second.generationId == 1 && leader.leader == leader.memberId)
        return (leader, second)
    }

    final class Flag: Sendable {
        private let value = Atomic(false)
        var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
        func set() { value.store(true, ordering: .sequentiallyConsistent) }
    }

    /// A follower's SyncGroup, answered (or not yet) as `answered` shows.
    static func syncing(_ request: SyncGroupRequest, _ groups: GroupCoordinator) -> (task: Task<SyncGroupResponse, Never>, answered: Flag) {
        let answered = Flag()
        return (Task {
            let response = await groups.sync(request)
            answered.set()
            return response
        }, answered)
    }

    /// Two members at generation 1 (group "g"), the follower's SyncGroup waiting for the leader's, and
    /// an assignment of one byte each.
    static func followerSyncing(_ groups: GroupCoordinator, _ loop: NIOAsyncTestingEventLoop) async
        -> (leader: JoinGroupResponse, follower: JoinGroupResponse, waiting: (task: Task<SyncGroupResponse, Never>, answered: Flag), [String: [UInt8]])
    {
        let (leader, follower) = await Self.twoMembers("g", groups, loop)
        let waiting = Self.syncing(Deadlines.sync("g", member: follower.memberId, generation: 1), groups)
        while await groups.waiting(in: "g") != [follower.memberId] { await Task.yield() }
        return (leader, follower, waiting, [leader.memberId: [1], follower.memberId: [2]])
    }

    @Test("The leader's assignment is stored before any member is answered; the record has the generation, leader, protocol and assignments")
    func rebalanceStored() async throws {
        let store = RecordingGroupStore(held: true)
        try await GroupStormTests.withCoordinator(limits: GroupLimits(), store: store) { groups, loop in
            let (leader, follower, waiting, assignments) = await Self.followerSyncing(groups, loop)
            let leading = Task { await groups.sync(Self.sync("g", member: leader.memberId, generation: 1, assigning: assignments)) }
            await store.untilWritten(1)
            let record = try #require(store.written.first)
            #expect(record.groupId == "g" && record.generation == 1 && record.leader == leader.memberId && record.protocolName == "range")
            #expect(record.protocolType == "consumer")
            #expect(record.members.map(\.memberId) == [leader.memberId, follower.memberId])
            #expect(record.members.map(\.assignment) == [ByteBuffer(bytes: [1]), ByteBuffer(bytes: [2])])
            #expect(record.members.map(\.subscription) == [ByteBuffer(bytes: [1]), ByteBuffer(bytes: [1])])
            #expect(record.members.map(\.sessionTimeoutMs) == [10_000, 10_000])
            await Task.yield()
            #expect(!waiting.answered.isSet, "no member is answered before the record is committed")
            #expect(await groups.describe("g")?.state == "CompletingRebalance")
            store.release()
            #expect(await leading.value.assignment == ByteBuffer(bytes: [1]))
            #expect(await waiting.task.value.assignment == ByteBuffer(bytes: [2]))
            #expect(await groups.describe("g")?.state == "Stable")
            var stable = try #require(await groups.snapshot(of: "g"))
            #expect(stable.stateTimestampMs >= record.stateTimestampMs, "the state changed since")
            stable.stateTimestampMs = record.stateTimestampMs
            #expect(stable == record)
        }
    }

    @Test("A store that fails: the waiting members get its error (NOT_ENOUGH_REPLICAS as COORDINATOR_NOT_AVAILABLE), their assignment is reset, and they rejoin",
        arguments: [(ErrorCode.notEnoughReplicas, ErrorCode.coordinatorNotAvailable), (.notCoordinator, .notCoordinator), (.notLeaderOrFollower, .notCoordinator)])
    func failedStore(stored: ErrorCode, answered: ErrorCode) async throws {
        let store = RecordingGroupStore(error: stored)
        try await GroupStormTests.withCoordinator(limits: GroupLimits(), store: store) { groups, loop in
            let (leader, follower, waiting, assignments) = await Self.followerSyncing(groups, loop)
            let leading = await groups.sync(Self.sync("g", member: leader.memberId, generation: 1, assigning: assignments))
            #expect(leading.errorCode == answered.rawValue)
            #expect(await waiting.task.value.errorCode == answered.rawValue)
            #expect(await groups.describe("g")?.state == "PreparingRebalance")
            #expect(await groups.describe("g")?.members.map(\.assignment) == [ByteBuffer(), ByteBuffer()])
            #expect(await groups.heartbeat(groupId: "g", memberId: follower.memberId, generation: 1) == .rebalanceInProgress)
            store.answer(.none)
            let rejoined = Task { await groups.join(Deadlines.join("g", member: leader.memberId, sessionMs: 10_000), version: 3, clientId: "a") }
            let other = await groups.join(Deadlines.join("g", member: follower.memberId, sessionMs: 10_000), version: 3, clientId: "b")
            let first = await rejoined.value
            #expect(first.generationId == 2 && other.generationId == 2)
            #expect(await groups.sync(Self.sync("g", member: leader.memberId, generation: 2, assigning: assignments)).errorCode == 0)
            #expect(store.written.last?.generation == 2)
        }
    }

    @Test("A rebalance that starts while the assignment is being stored wins: the stale store's answer changes nothing")
    func storeOvertaken() async throws {
        let store = RecordingGroupStore(held: true)
        try await GroupStormTests.withCoordinator(limits: GroupLimits(), store: store) { groups, loop in
            let (leader, follower) = await Self.twoMembers("g", groups, loop)
            let leading = Task { await groups.sync(Self.sync("g", member: leader.memberId, generation: 1, assigning: [leader.memberId: [1]])) }
            await store.untilWritten(1)
            // A third member joins meanwhile: the group prepares a new rebalance.
            let third = Task { await groups.join(Deadlines.join("g", sessionMs: 10_000), version: 3, clientId: "c") }
            await Deadlines.untilMembers(3, in: "g", groups)
            #expect(await leading.value.errorCode == ErrorCode.rebalanceInProgress.rawValue)
            store.release()
            await Task.yield()
            #expect(await groups.describe("g")?.state == "PreparingRebalance", "not Stable at generation 1")
            #expect(await groups.leave(groupId: "g", memberIds: [leader.memberId, follower.memberId]) == [.none, .none])
            #expect(await third.value.generationId == 2)
        }
    }

    @Test("A group left empty is stored with no members and its next generation (with offsets or not)")
    func emptyStored() async throws {
        let store = RecordingGroupStore()
        try await GroupStormTests.withCoordinator(offsets: ["kept"], store: store) { groups, loop in
            for group in ["kept", "gone"] {
                let joined = await groups.join(Deadlines.join(group, sessionMs: 6_000), version: 3, clientId: "a")
                #expect(await groups.leave(groupId: group, memberIds: [joined.memberId]) == [.none])
            }
            await store.untilWritten(2)
            #expect(store.written.map(\.groupId) == ["kept", "gone"])
            #expect(store.written.allSatisfy { $0.members.isEmpty && $0.generation == 2 && $0.leader == nil && $0.protocolName == nil })
            #expect(store.written.allSatisfy { $0.protocolType == "consumer" })
            #expect(await groups.snapshot(of: "kept") == store.written[0])
            #expect(await groups.snapshot(of: "gone") == nil)
            // A session that runs out empties a group the same way.
            _ = await groups.join(Deadlines.join("kept", sessionMs: 6_000), version: 3, clientId: "a")
            await loop.advanceTime(by: .milliseconds(6_000))
            await store.untilWritten(3)
            #expect(store.written[2].generation == 4 && store.written[2].members.isEmpty)
        }
    }

    static func loadedSnapshot(_ group: String = "g", instance: String? = nil) -> GroupSnapshot {
        func member(_ id: String, _ assignment: UInt8) -> GroupSnapshot.Member {
            GroupSnapshot.Member(
                memberId: id, instanceId: id == "m1" ? instance : nil, clientId: "c", clientHost: "/127.0.0.1", rebalanceTimeoutMs: 10_000,
                sessionTimeoutMs: 10_000, subscription: ByteBuffer(bytes: [1]), assignment: ByteBuffer(bytes: [assignment]))
        }
        return GroupSnapshot(
            groupId: group, generation: 7, protocolType: "consumer", protocolName: "range", leader: "m1", stateTimestampMs: 1_000,
            members: [member("m1", 1), member("m2", 2)])
    }

    @Test("Loaded groups carry on: their members heartbeat, commit and sync at their generation with no rebalance")
    func loadThenCarryOn() async throws {
        let store = RecordingGroupStore()
        try await GroupStormTests.withCoordinator(store: store) { groups, loop in
            await groups.load([Self.loadedSnapshot(instance: "i1")])
            #expect(await groups.describe("g")?.state == "Stable")
            #expect(await groups.snapshot(of: "g") == Self.loadedSnapshot(instance: "i1"))
            #expect(await groups.heartbeat(groupId: "g", memberId: "m2", generation: 7) == .none)
            #expect(await groups.heartbeat(groupId: "g", memberId: "m1", instanceId: "i1", generation: 7) == .none)
            #expect(await groups.commitCheck(groupId: "g", memberId: "m2", generation: 7) == .none)
            await groups.commitFinished(groupId: "g")
            #expect(await groups.commitCheck(groupId: "g", memberId: "m1", instanceId: "i1", generation: 7) == .none)
            await groups.commitFinished(groupId: "g")
            let synced = await groups.sync(Deadlines.sync("g", member: "m2", generation: 7))
            #expect(synced.errorCode == 0 && synced.assignment == ByteBuffer(bytes: [2]) && synced.protocolName == "range")
            // A member that does not come to the new coordinator is removed after its session.
            for _ in 0..<3 {
                await loop.advanceTime(by: .milliseconds(4_000))
                #expect(await groups.heartbeat(groupId: "g", memberId: "m2", generation: 7) != .unknownMemberId)
            }
            #expect(await Deadlines.members("g", groups) == ["m2"])
            #expect(await groups.describe("g")?.state == "PreparingRebalance")
            #expect(store.written.isEmpty, "loading writes nothing")
        }
    }

    @Test("A loaded group without members is Empty at its generation while it has offsets, and not kept without them")
    func loadEmpty() async throws {
        try await GroupStormTests.withCoordinator(offsets: ["kept"]) { groups, _ in
            var kept = Self.loadedSnapshot("kept")
            kept.members = []
            kept.leader = nil
            var gone = kept
            gone.groupId = "gone"
            await groups.load([kept, gone])
            #expect(await groups.describe("kept")?.state == "Empty")
            #expect(await groups.describe("gone") == nil)
            #expect(await groups.counts.timers == 0)
            let joined = await groups.join(Deadlines.join("kept", sessionMs: 6_000), version: 3, clientId: "a")
            #expect(joined.generationId == 8)
        }
    }
}
