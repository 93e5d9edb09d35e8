import SamsaWaiting
import Foundation
import Logging
import NIOCore
import SamsaProtocol

/// Consumer groups with Kafka's classic rebalance protocol, for the groups of one `__consumer_offsets`
/// partition led here (`GroupShard`; one actor per partition).
///
/// States as Kafka names them: Empty -> PreparingRebalance (members rejoin; JoinGroup responses wait)
/// -> CompletingRebalance (the new generation is out; SyncGroup responses wait for the leader's
/// assignment) -> Stable. A join, a leave or a missed session timeout starts a rebalance; a member
/// that does not rejoin within the rebalance timeout is dropped. Heartbeats during a rebalance get
/// REBALANCE_IN_PROGRESS, which is how members learn to rejoin. Static members (`group.instance.id`,
/// KIP-345) keep their place across restarts (`GroupCoordinator+StaticMembers`). A group's metadata is
/// made durable through a `GroupMetadataStore` where Kafka's `storeGroup` writes it (a completed
/// rebalance, a group left empty, a static member replaced), and a coordinator taking over installs it
/// with `load` (`GroupCoordinator+Persistence`), so its members carry on without a rebalance.
///
/// Bounded against careless and hostile clients (`GroupLimits`): session timeouts outside
/// `group.min/max.session.timeout.ms` are refused; member ids handed out with MEMBER_ID_REQUIRED
/// (`PendingMembers`) expire after the session timeout and are capped in number; a group left with no
/// members and no committed offsets is forgotten; and member ids carry at most a prefix of the client
/// id, so they always fit the protocol's strings.
///
/// Deadlines are events, not a sweep (`GroupDeadlines`): a member's session runs from its last
/// heartbeat, join or sync (and starts again while it still waits in one), a rebalance ends at the
/// longest rebalance timeout of its members, and unused member ids expire; each is a timer on `loop`,
/// moved or cancelled as soon as it no longer matters. The actor runs on that same loop, so a timer
/// that fires runs its expiry directly. Time is the loop's clock: tests give an
/// `NIOAsyncTestingEventLoop` and move it by hand.
///
/// Waiting JoinGroup and SyncGroup requests are `DelayedOperation`s the coordinator completes: a
/// cancelled request (its connection closed, the broker stopping) is answered at once.
actor GroupCoordinator {
    enum State: String {
        case empty = "Empty"
        case preparingRebalance = "PreparingRebalance"
        case completingRebalance = "CompletingRebalance"
        case stable = "Stable"
    }

    struct Member {
        var id: String
        var instanceId: String?
        var clientId: String
        /// Where its JoinGroup came from, as Kafka shows it ("/127.0.0.1").
        var clientHost: String
        var sessionTimeout: Duration
        var rebalanceTimeout: Duration
        var protocols: [(name: String, metadata: ByteBuffer)]
        var assignment = ByteBuffer()
        /// Its JoinGroup or SyncGroup waiting for the rest of the group.
        var joinWaiter: Reply<JoinGroupResponse>?
        var syncWaiter: Reply<SyncGroupResponse>?

        /// Whether a request of its still waits (one cancelled, by its connection closing, does not).
        var isWaiting: Bool { joinWaiter?.isCompleted == false || syncWaiter?.isCompleted == false }
    }

    /// A request waiting for its group; cancelled, it gets `expired`.
    typealias Reply<Response: Sendable> = DelayedOperation<String, Response>

    struct Group {
        var id: String
        var state = State.empty
        var generation: Int32 = 0
        var protocolType: String?
        var protocolName: String?
        var leader: String?
        /// Members in the order they joined (the first is the leader of a new generation).
        var order: [String] = []
        var members: [String: Member] = [:]
        /// Static members: `group.instance.id` -> member id (KIP-345).
        var staticMembers: [String: String] = [:]
        /// When the state last changed, in milliseconds since the epoch (Kafka's currentStateTimestamp).
        var stateTimestampMs = Self.nowMs()
        /// The first rebalance of an Empty group, waiting for more members (Kafka's InitialDelayedJoin).
        var initialDelay: InitialDelay?

        mutating func transition(to state: State) {
            self.state = state
            stateTimestampMs = Self.nowMs()
        }

        static func nowMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
    }

    /// `group.initial.rebalance.delay.ms`: a rebalance of an Empty group completes no sooner than
    /// `delay`; a new member joining meanwhile extends it by the configured delay again, while
    /// `remaining` (what is left of the rebalance timeout) lasts.
    struct InitialDelay {
        var delay: Duration
        var remaining: Duration
        var newMemberAdded = false
    }

    /// The longest prefix of the client id a member id starts with (then "-" and a UUID). Kafka uses
    /// the whole client id, so a client id near the 32,767-byte string limit made a member id that no
    /// response could carry; Samsa's ids always fit, and a storm of them stays small.
    static let memberIdClientIdBytes = 255

    let limits: GroupLimits
    /// The loop the timers fire on, and (as `executor`) the actor runs on.
    let loop: any EventLoop
    private nonisolated let executor: any SerialExecutor
    var deadlines: GroupDeadlines
    /// Whether a group has committed offsets (an empty group without any is forgotten).
    let hasOffsets: @Sendable (String) -> Bool
    /// Where groups' metadata is made durable.
    let store: any GroupMetadataStore
    /// Each group's last write to `store`: the next one waits for it, so they land in order.
    var lastWrite: [String: Task<ErrorCode, Never>] = [:]
    var groups: [String: Group] = [:]
    /// Groups DeleteGroups is deleting (Kafka's Dead): joins and commits get COORDINATOR_NOT_AVAILABLE
    /// until their offsets' tombstones are durable, so none lands on a group half deleted.
    private var deleting: Set<String> = []
    /// Commits between their check (`commitCheck`) and their publish (`commitFinished`), per group. A
    /// deletion waits for them (`commitsPublished`), as Kafka holds the group's lock over both: a
    /// commit checked before a deletion began never lands after its tombstones.
    private var commitsInFlight: [String: Int] = [:]
    /// Deletions waiting for a group's commits in flight.
    private var awaitingCommits: [String: [Reply<Bool>]] = [:]
    private var pending: PendingMembers
    let logger: Logger

    init(
        limits: GroupLimits = GroupLimits(), hasOffsets: @escaping @Sendable (String) -> Bool = { _ in false },
        store: any GroupMetadataStore = NoGroupMetadataStore(), loop: any EventLoop,
        logger: Logger = Logger(label: "samsa.groups", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.logger = logger
        self.limits = limits
        self.hasOffsets = hasOffsets
        self.store = store
        self.loop = loop
        self.executor = loop.executor  // kept: the executor an actor runs on must outlive it
        self.deadlines = GroupDeadlines(loop: loop)
        self.pending = PendingMembers(capacity: limits.maxPendingMembers)
    }


    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Groups held in memory, member ids issued but not yet used, and deadlines armed (for tests and metrics).
    var counts: (groups: Int, pendingMembers: Int, timers: Int) { (groups.count, pending.count, deadlines.count) }

    /// The members of a group with a JoinGroup or SyncGroup waiting (tests).
    func waiting(in groupId: String) -> [String] {
        groups[groupId].map { group in group.order.filter { group.members[$0]?.isWaiting == true } } ?? []
    }

    // MARK: - JoinGroup

    func join(_ request: JoinGroupRequest, version: Int16, clientId: String, clientHost: String = "") async -> JoinGroupResponse {
        guard !request.groupId.isEmpty else { return .error(.invalidGroupId) }
        guard !deleting.contains(request.groupId) else { return .error(.coordinatorNotAvailable) }
        guard limits.sessionTimeouts.contains(.milliseconds(Int(request.sessionTimeoutMs))) else {
            return .error(.invalidSessionTimeout, memberId: request.memberId)
        }
        let instanceId = request.groupInstanceId
        var group = groups[request.groupId] ?? Group(id: request.groupId)
        let staticMemberId = instanceId.flatMap { group.staticMembers[$0] }
        // Only a member already in the group may join a full one (Kafka's `group.isFull`), also before
        // it gets a member id; a static member coming back takes its own place.
        guard group.members[request.memberId] != nil || staticMemberId != nil || group.members.count < limits.maxGroupSize else {
            return .error(.groupMaxSizeReached, memberId: request.memberId)
        }
        if !group.members.isEmpty {
            let supported = Set(request.protocols.map(\.name))
            let common = group.members.values.allSatisfy { member in member.protocols.contains { supported.contains($0.name) } }
            guard group.protocolType == request.protocolType, common else { return .error(.inconsistentGroupProtocol, memberId: request.memberId) }
        }
        var memberId = request.memberId
        if memberId.isEmpty {
            memberId = Self.newMemberId(clientId: instanceId ?? clientId)
            if let instanceId, let staticMemberId {
                return await replaceStaticMember(staticMemberId, with: memberId, instanceId: instanceId, request, clientId: clientId, clientHost: clientHost)
            }
            if instanceId == nil && version >= 4 {
                // KIP-394: the client must come back with the id (within its session timeout) before it
                // counts as a member; until then only the id is kept, not the group. A static member
                // is known by its instance id, and joins at once (as in Kafka).
                let sessionTimeout = Duration.milliseconds(Int(request.sessionTimeoutMs))
                pending.issue(memberId, group: request.groupId, expiring: loop.now + TimeAmount(sessionTimeout))
                armPendingMembers()
                return .error(.memberIdRequired, memberId: memberId)
            }
        } else if group.members[memberId] == nil {
            let claimed = pending.claim(memberId, group: request.groupId, at: loop.now)
            armPendingMembers()
            guard claimed else { return .error(group.memberError(memberId, instanceId: instanceId) ?? .unknownMemberId, memberId: memberId) }
        } else {
            if let error = group.memberError(memberId, instanceId: instanceId) { return .error(error, memberId: memberId) }
            if let current = group.currentGeneration(for: memberId, joining: request) {
                startSession(of: group.members[memberId]!, in: group.id)
                return current
            }
        }
        group.protocolType = request.protocolType
        let waiter = Reply<JoinGroupResponse>(keys: [group.id], expired: .error(.notCoordinator)) { _ in nil }
        let previous = group.members[memberId]
        var member = Member(request, id: memberId, clientId: clientId, clientHost: clientHost)
        member.assignment = previous?.assignment ?? ByteBuffer()
        member.instanceId = previous?.instanceId ?? instanceId
        member.joinWaiter = waiter
        if previous == nil {
            group.order.append(memberId)
            if let instanceId { group.staticMembers[instanceId] = memberId }
            if group.state == .preparingRebalance && group.generation == 0 { group.initialDelay?.newMemberAdded = true }
        }
        // A member already waiting (a client retry) gets its answer from this join instead.
        previous?.joinWaiter?.complete(.error(.unknownMemberId))
        previous?.syncWaiter?.complete(.error(.rebalanceInProgress))
        group.members[memberId] = member
        startSession(of: member, in: group.id)
        groups[group.id] = group
        if group.state != .preparingRebalance { prepareRebalance(group.id) }
        completeJoinIfReady(group.id)
        return await waiter.outcome()
    }

    /// `<client id prefix>-<uuid>`: the client id cut to `memberIdClientIdBytes` at a scalar boundary
    /// (looking at no more of it than that).
    static func newMemberId(clientId: String) -> String {
        var bytes = 0
        let scalars = clientId.unicodeScalars.prefix { scalar in
            bytes += UTF8.width(scalar)
            return bytes <= memberIdClientIdBytes
        }
        let prefix = scalars.isEmpty ? "member" : String(String.UnicodeScalarView(scalars))
        return "\(prefix)-\(UUID().uuidString.lowercased())"
    }

    /// Starts a rebalance: pending SyncGroups are told to rejoin; joins wait for every member, until
    /// the longest rebalance timeout among them. A rebalance of an Empty group first waits
    /// `group.initial.rebalance.delay.ms` for more members (Kafka's InitialDelayedJoin).
    func prepareRebalance(_ groupId: String) {
        guard var group = groups[groupId] else { return }
        for id in group.order {
            guard let waiter = group.members[id]?.syncWaiter else { continue }
            group.members[id]?.syncWaiter = nil
            waiter.complete(.error(.rebalanceInProgress))
            startSession(of: group.members[id]!, in: groupId)
        }
        let timeout = group.rebalanceTimeout
        let delay = limits.initialRebalanceDelay
        if group.state == .empty && delay > .zero {
            group.initialDelay = InitialDelay(delay: delay, remaining: max(timeout - delay, .zero))
            arm(.rebalance(group: groupId), at: loop.now + TimeAmount(delay))
        } else {
            arm(.rebalance(group: groupId), at: loop.now + TimeAmount(timeout))
        }
        group.transition(to: .preparingRebalance)
        groups[groupId] = group
    }

    /// The rebalance's deadline passed: an initial delay that saw a new member join waits once more
    /// (at most the configured delay, within what is left of the rebalance timeout); else the
    /// rebalance completes with the members that rejoined.
    private func rebalanceDeadline(_ groupId: String) {
        if let delay = groups[groupId]?.initialDelay {
            groups[groupId]?.initialDelay = nil
            if delay.newMemberAdded && delay.remaining > .zero {
                let next = min(limits.initialRebalanceDelay, delay.remaining)
                groups[groupId]?.initialDelay = InitialDelay(delay: next, remaining: max(delay.remaining - delay.delay, .zero))
                return arm(.rebalance(group: groupId), at: loop.now + TimeAmount(next))
            }
        }
        completeJoinIfReady(groupId, deadlinePassed: true)
    }

    /// Completes the rebalance once every member has rejoined (or, at its deadline, dropping the
    /// dynamic members that did not: a static member that did not stays, its session decides, and
    /// the leader assigns it its share as if it had).
    func completeJoinIfReady(_ groupId: String, deadlinePassed: Bool = false) {
        guard var group = groups[groupId], group.state == .preparingRebalance, group.initialDelay == nil else { return }
        let missing = group.order.filter { group.members[$0]?.joinWaiter == nil }
        guard missing.isEmpty || deadlinePassed else { return }
        deadlines.cancel(.rebalance(group: groupId))
        for id in missing where group.members[id]?.instanceId == nil {
            logger.info("member did not rejoin within the rebalance timeout; removed", metadata: ["group": "\(groupId)", "member": "\(id)"])
            remove(id, from: &group)
        }
        guard !group.members.isEmpty else {
            groups[groupId] = group
            becameEmpty(groupId)
            return
        }
        let joined = group.order.filter { group.members[$0]?.joinWaiter != nil }
        guard let firstJoined = joined.first else {
            // Only static members that did not rejoin: wait again, until they do or their sessions end.
            groups[groupId] = group
            return arm(.rebalance(group: groupId), at: loop.now + TimeAmount(group.rebalanceTimeout))
        }
        group.generation = Group.generation(after: group.generation)
        if !joined.contains(group.leader ?? "") { group.leader = firstJoined }
        group.protocolName = group.selectedProtocol
        group.transition(to: .completingRebalance)
        for id in joined {
            guard let waiter = group.members[id]?.joinWaiter else { continue }
            group.members[id]?.joinWaiter = nil
            startSession(of: group.members[id]!, in: groupId)
            waiter.complete(group.joinResponse(for: id))
        }
        groups[groupId] = group
    }

    func remove(_ id: String, from group: inout Group) {
        group.members[id]?.joinWaiter?.complete(.error(.unknownMemberId))
        group.members[id]?.syncWaiter?.complete(.error(.unknownMemberId))
        deadlines.cancel(.session(group: group.id, member: id))
        if let instanceId = group.members[id]?.instanceId, group.staticMembers[instanceId] == id { group.staticMembers[instanceId] = nil }
        group.members[id] = nil
        group.order.removeAll { $0 == id }
        if group.leader == id { group.leader = nil }
    }

    // MARK: - SyncGroup

    /// Kafka's `handleSyncGroup`: the leader's assignment is made durable (`store`) before any member
    /// is answered; if that fails, every waiting member gets the error and the group rebalances.
    func sync(_ request: SyncGroupRequest) async -> SyncGroupResponse {
        guard var group = groups[request.groupId] else { return .error(.unknownMemberId) }
        if let error = group.memberError(request.memberId, instanceId: request.groupInstanceId) { return .error(error) }
        guard request.generationId == group.generation else { return .error(.illegalGeneration) }
        if let type = request.protocolType, type != group.protocolType { return .error(.inconsistentGroupProtocol) }
        if let name = request.protocolName, name != group.protocolName { return .error(.inconsistentGroupProtocol) }
        startSession(of: group.members[request.memberId]!, in: group.id)
        switch group.state {
        case .empty:
            return .error(.unknownMemberId)
        case .preparingRebalance:
            return .error(.rebalanceInProgress)
        case .stable:
            return group.syncResponse(for: request.memberId)
        case .completingRebalance:
            let waiter = Reply<SyncGroupResponse>(keys: [group.id], expired: .error(.notCoordinator)) { _ in nil }
            group.members[request.memberId]?.syncWaiter?.complete(.error(.rebalanceInProgress))  // a client retry
            group.members[request.memberId]?.syncWaiter = waiter
            groups[group.id] = group
            if request.memberId == group.leader {
                let assignments = Dictionary(request.assignments.map { ($0.memberId, $0.assignment) }, uniquingKeysWith: { first, _ in first })
                for id in group.order { group.members[id]?.assignment = assignments[id] ?? ByteBuffer() }
                let written = enqueueWrite(group.snapshot())
                Task { assignmentStored(group, await written.value) }
            }
            return await waiter.outcome()
        }
    }

    /// The leader's assignment is durable (or failed to be): the members waiting get it (or the error,
    /// their assignment reset, and the group rebalances). Another member may have joined meanwhile:
    /// only this generation's rebalance completes.
    private func assignmentStored(_ assigned: Group, _ error: ErrorCode) {
        guard var group = groups[assigned.id], group.state == .completingRebalance, group.generation == assigned.generation else { return }
        for id in group.order { group.members[id]?.assignment = error == .none ? assigned.members[id]?.assignment ?? ByteBuffer() : ByteBuffer() }
        if error == .none { group.transition(to: .stable) }
        for id in group.order {
            guard let waiter = group.members[id]?.syncWaiter else { continue }
            group.members[id]?.syncWaiter = nil
            waiter.complete(error == .none ? group.syncResponse(for: id) : .error(error))
            startSession(of: group.members[id]!, in: group.id)
        }
        groups[group.id] = group
        guard error == .none else {
            logger.warning("could not store the group's assignment; rebalancing", metadata: ["group": "\(group.id)", "error": "\(error)"])
            return prepareRebalance(group.id)
        }
    }

    // MARK: - Heartbeat, LeaveGroup, deadlines

    func heartbeat(groupId: String, memberId: String, instanceId: String? = nil, generation: Int32) -> ErrorCode {
        guard let group = groups[groupId] else { return .unknownMemberId }
        if let error = group.memberError(memberId, instanceId: instanceId) { return error }
        startSession(of: group.members[memberId]!, in: groupId)
        if group.state == .preparingRebalance { return .rebalanceInProgress }
        guard generation == group.generation else { return .illegalGeneration }
        return .none
    }

    /// Removes members, each named by its member id or (an administrator removing a static member,
    /// LeaveGroup v3+) by its instance id alone; the rest rebalance. Returns an error per member.
    func leave(groupId: String, members leaving: [(memberId: String, instanceId: String?)]) -> [ErrorCode] {
        guard var group = groups[groupId] else { return leaving.map { _ in .unknownMemberId } }
        var removed = false
        let results = leaving.map { identity -> ErrorCode in
            var memberId = identity.memberId
            if memberId.isEmpty {
                guard let current = identity.instanceId.flatMap({ group.staticMembers[$0] }) else { return .unknownMemberId }
                memberId = current
            } else if group.members[memberId] == nil && pending.claim(memberId, group: groupId, at: loop.now) {
                return .none  // a member id issued and not used yet: forgotten
            } else if let error = group.memberError(memberId, instanceId: identity.instanceId) {
                return error
            }
            logger.info("member left the group", metadata: ["group": "\(groupId)", "member": "\(memberId)"])
            remove(memberId, from: &group)
            removed = true
            return .none
        }
        armPendingMembers()
        guard removed else { return results }
        groups[groupId] = group
        membershipChanged(groupId)
        return results
    }

    /// Removes dynamic members by member id (tests).
    func leave(groupId: String, memberIds: [String]) -> [ErrorCode] {
        leave(groupId: groupId, members: memberIds.map { ($0, nil) })
    }

    /// (Re)starts a member's session, at each request of its and each answer to one that waited: it is
    /// dropped unless it heartbeats, joins or syncs within its session timeout, or still waits in a
    /// JoinGroup or SyncGroup then (Kafka keeps such a member: its client waits, not heartbeating).
    func startSession(of member: Member, in groupId: String) {
        arm(.session(group: groupId, member: member.id), at: loop.now + TimeAmount(member.sessionTimeout))
    }

    /// Keeps one timer at the deadline of the oldest unused member id, none when there is none.
    private func armPendingMembers() {
        guard let deadline = pending.nextDeadline() else { return deadlines.cancel(.pendingMembers) }
        if deadlines.deadline(.pendingMembers) != deadline { arm(.pendingMembers, at: deadline) }
    }

    /// Arms `key`'s timer; firing on the loop that is this actor's executor, it runs `expire` there.
    func arm(_ key: GroupDeadlines.Key, at deadline: NIODeadline) {
        deadlines.schedule(key, at: deadline) { [weak self] key, token in
            self?.assumeIsolated { coordinator in
                guard coordinator.deadlines.take(key, token: token) else { return }
                coordinator.expire(key, at: coordinator.loop.now)
            }
        }
    }

    /// A deadline passed: drops a member whose session ran out, ends a rebalance (dropping members that
    /// did not rejoin) or forgets member ids that were not used in time.
    private func expire(_ key: GroupDeadlines.Key, at now: NIODeadline) {
        switch key {
        case .session(let groupId, let memberId):
            guard var group = groups[groupId], let member = group.members[memberId] else { return }
            guard !member.isWaiting else { return startSession(of: member, in: groupId) }
            logger.info("member's session timed out; removed", metadata: ["group": "\(groupId)", "member": "\(memberId)"])
            remove(memberId, from: &group)
            groups[groupId] = group
            membershipChanged(groupId)
        case .rebalance(let groupId):
            rebalanceDeadline(groupId)
        case .pendingMembers:
            pending.expire(now: now)
            armPendingMembers()
        }
    }

    /// Runs now, earliest first, the deadlines due within `duration`, as if that much time had passed
    /// (tests of a live broker, whose loop's clock they cannot move). Deadlines set meanwhile wait.
    func expire(after duration: Duration) {
        let now = loop.now + TimeAmount(duration)
        for key in deadlines.due(by: now) where deadlines.take(key, ifDueBy: now) { expire(key, at: now) }
    }

    /// Answers every waiting JoinGroup and SyncGroup with NOT_COORDINATOR (their members look for
    /// the coordinator again) and cancels every timer: the partition moved away or the broker stops.
    func stop() {
        for member in groups.values.flatMap(\.members.values) {
            member.joinWaiter?.complete(.error(.notCoordinator))
            member.syncWaiter?.complete(.error(.notCoordinator))
        }
        groups = [:]
        pending = PendingMembers(capacity: limits.maxPendingMembers)
        deadlines.cancelAll()
    }

    private func membershipChanged(_ groupId: String) {
        guard let group = groups[groupId] else { return }
        if group.members.isEmpty {
            becameEmpty(groupId)
        } else if group.state == .preparingRebalance {
            completeJoinIfReady(groupId)
        } else {
            prepareRebalance(groupId)
        }
    }

    /// The last member left: the group is Empty, generation bumped, and so recorded (Kafka's
    /// `storeGroup` of an empty group: a failure is only logged, no member waits on it). Kafka keeps
    /// such a group while it has committed offsets, and removes it otherwise: nothing would be lost,
    /// and a storm of joins to new group ids must not leave one behind each.
    private func becameEmpty(_ groupId: String) {
        deadlines.cancel(.rebalance(group: groupId))
        guard var group = groups[groupId] else { return }
        group.transition(to: .empty)
        group.generation = Group.generation(after: group.generation)
        group.leader = nil
        group.protocolName = nil
        group.initialDelay = nil
        let written = enqueueWrite(group.snapshot())
        let logger = logger
        Task {
            let error = await written.value
            if error != .none { logger.warning("could not store the empty group", metadata: ["group": "\(groupId)", "error": "\(error)"]) }
        }
        groups[groupId] = hasOffsets(groupId) ? group : nil
    }

    // MARK: - Offsets' generation check, listing

    /// Whether a commit with this generation, member and instance id may write (Kafka's
    /// `validateOffsetCommit`): simple consumers (generation -1, no member) commit to empty groups;
    /// group members only within their current generation, also while the group prepares a rebalance
    /// (a member commits what it consumed before it rejoins), not between the new generation's
    /// JoinGroup and its assignment. A simple consumer's commit to a group with members gets
    /// UNKNOWN_MEMBER_ID, as in Kafka (it would undo what the members commit: Kafka's reset-offsets
    /// tool relies on it). An allowed commit is in flight until `commitFinished`.
    func commitCheck(groupId: String, memberId: String, instanceId: String? = nil, generation: Int32) -> ErrorCode {
        let allowed = commitAllowed(groupId: groupId, memberId: memberId, instanceId: instanceId, generation: generation)
        if allowed == .none { commitsInFlight[groupId, default: 0] += 1 }
        return allowed
    }

    /// A commit `commitCheck` allowed is written and published (or failed).
    func commitFinished(groupId: String) {
        guard let count = commitsInFlight[groupId] else { return }
        if count > 1 {
            commitsInFlight[groupId] = count - 1
            return
        }
        commitsInFlight[groupId] = nil
        for waiter in awaitingCommits.removeValue(forKey: groupId) ?? [] { waiter.complete(true) }
    }

    /// Returns once every commit to these groups that was allowed before now is published.
    func commitsPublished(_ groupIds: [String]) async {
        for id in groupIds where commitsInFlight[id] != nil {
            let waiter = Reply<Bool>(keys: [id], expired: false) { _ in nil }
            awaitingCommits[id, default: []].append(waiter)
            _ = await waiter.outcome()
        }
    }

    /// Whether a deletion waits for this group's commits in flight (tests).
    func isAwaitingCommits(_ groupId: String) -> Bool { awaitingCommits[groupId] != nil }

    private func commitAllowed(groupId: String, memberId: String, instanceId: String?, generation: Int32) -> ErrorCode {
        guard !deleting.contains(groupId) else { return .coordinatorNotAvailable }
        guard let group = groups[groupId], !group.members.isEmpty else {
            return generation < 0 && memberId.isEmpty && instanceId == nil ? .none : .unknownMemberId
        }
        guard generation >= 0 || !memberId.isEmpty || instanceId != nil else { return .unknownMemberId }
        if let error = group.memberError(memberId, instanceId: instanceId) { return error }
        guard generation == group.generation else { return .illegalGeneration }
        if group.state == .completingRebalance { return .rebalanceInProgress }
        startSession(of: group.members[memberId]!, in: groupId)
        return .none
    }

    struct Description: Sendable {
        var groupId: String
        var state: String
        var protocolType: String
        var protocolName: String
        var members: [(id: String, instanceId: String?, clientId: String, clientHost: String, metadata: ByteBuffer, assignment: ByteBuffer)]
    }

    func describe(_ groupId: String) -> Description? {
        guard let group = groups[groupId] else { return nil }
        return Description(
            groupId: groupId, state: group.state.rawValue, protocolType: group.protocolType ?? "", protocolName: group.protocolName ?? "",
            members: group.order.compactMap { id in
                group.members[id].map { member in
                    (id, member.instanceId, member.clientId, member.clientHost, member.protocols.first { $0.name == group.protocolName }?.metadata ?? ByteBuffer(),
                     member.assignment)
                }
            })
    }

    // MARK: - DeleteGroups, OffsetDelete

    /// DeleteGroups' first step, as Kafka's `handleDeleteGroups`: per group id, NON_EMPTY_GROUP while
    /// it has members, GROUP_ID_NOT_FOUND when it has neither members nor committed offsets (or is being
    /// deleted already), else none: the group is forgotten and marked deleting until `finishDeleting`.
    func beginDeleting(_ groupIds: [String]) -> [ErrorCode] {
        groupIds.map { id in
            if deleting.contains(id) { return .groupIdNotFound }
            if let group = groups[id], !group.members.isEmpty { return .nonEmptyGroup }
            guard groups[id] != nil || hasOffsets(id) else { return .groupIdNotFound }
            deadlines.cancel(.rebalance(group: id))
            groups[id] = nil
            deleting.insert(id)
            return .none
        }
    }

    /// The groups' offsets are deleted (or failed to be): they may be joined and committed to again.
    func finishDeleting(_ groupIds: [String]) {
        for id in groupIds { deleting.remove(id) }
    }

    /// What OffsetDelete may delete in a group (Kafka's `handleDeleteOffsets`).
    enum OffsetDeletion: Equatable {
        /// GROUP_ID_NOT_FOUND (or NON_EMPTY_GROUP: members, not of the consumer protocol).
        case refused(ErrorCode)
        /// Any partition: the group has no members.
        case any
        /// Partitions of topics none of its members subscribe to (nil: every topic is taken as
        /// subscribed, a member's subscription not being readable).
        case notSubscribed(Set<String>?)
    }

    func offsetDeletion(_ groupId: String) -> OffsetDeletion {
        guard !deleting.contains(groupId) else { return .refused(.groupIdNotFound) }
        guard let group = groups[groupId], !group.members.isEmpty else { return hasOffsets(groupId) ? .any : .refused(.groupIdNotFound) }
        guard group.protocolType == ConsumerSubscription.protocolType else { return .refused(.nonEmptyGroup) }
        var topics = Set<String>()
        for member in group.members.values {
            let metadata = member.protocols.first { $0.name == group.protocolName }?.metadata ?? member.protocols.first?.metadata
            guard let metadata, let subscribed = ConsumerSubscription.topics(metadata) else { return .notSubscribed(nil) }
            topics.formUnion(subscribed)
        }
        return .notSubscribed(topics)
    }

    func list() -> [(groupId: String, protocolType: String, state: String)] {
        groups.values.sorted { $0.id < $1.id }.map { ($0.id, $0.protocolType ?? "", $0.state.rawValue) }
    }
}

extension GroupCoordinator.Group {
    /// The next generation: after Int32.max it starts again at 1 (a client making two billion
    /// rebalances must not trap the broker, and a negative one would read as a simple consumer's).
    static func generation(after generation: Int32) -> Int32 {
        generation == .max ? 1 : generation + 1
    }

    /// The longest rebalance timeout of its members (how long a rebalance waits for them).
    var rebalanceTimeout: Duration { members.values.map(\.rebalanceTimeout).max() ?? .zero }

    /// Kafka's `validateCurrentMember`: a request naming an instance id must come from the member
    /// that holds it now (FENCED_INSTANCE_ID when another does: its old member id after a restart),
    /// and its member id must be in the group (UNKNOWN_MEMBER_ID); nil when both hold.
    func memberError(_ memberId: String, instanceId: String?) -> ErrorCode? {
        if let instanceId {
            guard let current = staticMembers[instanceId] else { return .unknownMemberId }
            if current != memberId { return .fencedInstanceId }
        }
        return members[memberId] == nil ? .unknownMemberId : nil
    }

    /// The answer to a member's JoinGroup that changes nothing, as Kafka gives it: the current
    /// generation, to a member rejoining with the same protocols after the generation's JoinGroup
    /// answers went out, or to a follower of a Stable group (the leader's rejoin rebalances: it is
    /// how it reassigns after a metadata change). Nil when the join starts or joins a rebalance.
    func currentGeneration(for memberId: String, joining request: JoinGroupRequest) -> JoinGroupResponse? {
        guard let member = members[memberId], member.protocols.elementsEqual(request.protocols, by: { $0.name == $1.name && $0.metadata == $1.metadata })
        else { return nil }
        switch state {
        case .completingRebalance: return joinResponse(for: memberId)
        case .stable where memberId != leader: return joinResponse(for: memberId)
        default: return nil
        }
    }

    /// A JoinGroup answer of the current generation; the leader's lists every member with its
    /// metadata for the chosen protocol (a static member that did not rejoin too: it keeps its share).
    func joinResponse(for memberId: String, leader: String? = nil) -> JoinGroupResponse {
        var response = JoinGroupResponse()
        response.generationId = generation
        response.protocolType = protocolType
        response.protocolName = protocolName
        response.leader = leader ?? self.leader ?? ""
        response.memberId = memberId
        guard memberId == response.leader else { return response }
        response.members = order.compactMap { id in
            guard let member = members[id] else { return nil }
            var entry = JoinGroupResponse.JoinGroupResponseMember()
            entry.memberId = id
            entry.groupInstanceId = member.instanceId
            entry.metadata = member.protocols.first { $0.name == protocolName }?.metadata ?? ByteBuffer()
            return entry
        }
        return response
    }

    func syncResponse(for memberId: String) -> SyncGroupResponse {
        var response = SyncGroupResponse()
        response.protocolType = protocolType
        response.protocolName = protocolName
        response.assignment = members[memberId]?.assignment ?? ByteBuffer()
        return response
    }
}

extension GroupCoordinator.Member {
    /// A member as its JoinGroup describes it (a rebalance timeout of 0 or less, JoinGroup v0's, is
    /// its session timeout).
    init(_ request: JoinGroupRequest, id: String, clientId: String, clientHost: String) {
        let rebalanceMs = request.rebalanceTimeoutMs > 0 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs
        self.init(
            id: id, instanceId: request.groupInstanceId, clientId: clientId, clientHost: clientHost,
            sessionTimeout: .milliseconds(Int(request.sessionTimeoutMs)), rebalanceTimeout: .milliseconds(Int(rebalanceMs)),
            protocols: request.protocols.map { ($0.name, $0.metadata) })
    }
}

extension JoinGroupResponse {
    static func error(_ code: ErrorCode, memberId: String = "") -> JoinGroupResponse {
        var response = JoinGroupResponse()
        response.errorCode = code.rawValue
        response.memberId = memberId
        return response
    }
}

extension SyncGroupResponse {
    static func error(_ code: ErrorCode) -> SyncGroupResponse {
        var response = SyncGroupResponse()
        response.errorCode = code.rawValue
        return response
    }
}
