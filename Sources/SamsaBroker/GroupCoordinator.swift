import SamsaWaiting
import Foundation
import Logging
import NIOCore
import SamsaProtocol

/// Consumer groups with Kafka's classic rebalance protocol, for one coordinator (this broker).
///
/// States as Kafka names them: Empty -> PreparingRebalance (members rejoin; JoinGroup responses wait)
/// -> CompletingRebalance (the new generation is out; SyncGroup responses wait for the leader's
/// assignment) -> Stable. A join, a leave or a missed session timeout starts a rebalance; a member
/// that does not rejoin within the rebalance timeout is dropped. Heartbeats during a rebalance get
/// REBALANCE_IN_PROGRESS, which is how members learn to rejoin. Memory only: membership is soft state
/// (members rejoin after a restart); committed offsets are kept by `CommittedOffsetLog`.
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
    }

    /// The longest prefix of the client id a member id starts with (then "-" and a UUID). Kafka uses
    /// the whole client id, so a client id near the 32,767-byte string limit made a member id that no
    /// response could carry; Samsa's ids always fit, and a storm of them stays small.
    static let memberIdClientIdBytes = 255

    private let limits: GroupLimits
    /// The loop the timers fire on, and (as `executor`) the actor runs on.
    let loop: any EventLoop
    private nonisolated let executor: any SerialExecutor
    private var deadlines: GroupDeadlines
    /// Whether a group has committed offsets (an empty group without any is forgotten).
    private let hasOffsets: @Sendable (String) -> Bool
    private var groups: [String: Group] = [:]
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
    private let logger: Logger

    init(
        limits: GroupLimits = GroupLimits(), hasOffsets: @escaping @Sendable (String) -> Bool = { _ in false },
        store: any GroupMetadataStore = NoGroupMetadataStore(), loop: any EventLoop,
        logger: Logger = Logger(label: "samsa.groups", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.logger = logger
        self.limits = limits
        self.hasOffsets = hasOffsets
        self.loop = loop
        self.executor = loop.executor  // kept: the executor an actor runs on must outlive it
        self.deadlines = GroupDeadlines(loop: loop)
        self.pending = PendingMembers(capacity: limits.maxPendingMembers)
    }

    func load(_ snapshots: [GroupSnapshot]) {}  // LEAD-TEMP: replaced by h-groups' merge

    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Groups held in memory, member ids issued but not yet used, and deadlines armed (for tests and metrics).
    var counts: (groups: Int, pendingMembers: Int, timers: Int) { (groups.count, pending.count, deadlines.count) }

    // MARK: - JoinGroup

    func join(_ request: JoinGroupRequest, version: Int16, clientId: String, clientHost: String = "") async -> JoinGroupResponse {
        guard !request.groupId.isEmpty else { return .error(.invalidGroupId) }
        guard !deleting.contains(request.groupId) else { return .error(.coordinatorNotAvailable) }
        guard limits.sessionTimeouts.contains(.milliseconds(Int(request.sessionTimeoutMs))) else {
            var response = JoinGroupResponse.error(.invalidSessionTimeout)
            response.memberId = request.memberId
            return response
        }
        let at = loop.now
        let sessionTimeout = Duration.milliseconds(Int(request.sessionTimeoutMs))
        var group = groups[request.groupId] ?? Group(id: request.groupId)
        // Only a member already in the group may join a full one (Kafka's `group.isFull`), also before
        // it gets a member id.
        guard group.members[request.memberId] != nil || group.members.count < limits.maxGroupSize else {
            var response = JoinGroupResponse.error(.groupMaxSizeReached)
            response.memberId = request.memberId
            return response
        }
        var memberId = request.memberId
        if memberId.isEmpty {
            memberId = Self.newMemberId(clientId: clientId)
            if version >= 4 {
                // KIP-394: the client must come back with the id (within its session timeout) before it
                // counts as a member; until then only the id is kept, not the group.
                pending.issue(memberId, group: request.groupId, expiring: at + TimeAmount(sessionTimeout))
                armPendingMembers()
                var response = JoinGroupResponse.error(.memberIdRequired)
                response.memberId = memberId
                return response
            }
        } else if group.members[memberId] == nil {
            let claimed = pending.claim(memberId, group: request.groupId, at: at)
            armPendingMembers()
            guard claimed else {
                var response = JoinGroupResponse.error(.unknownMemberId)
                response.memberId = memberId
                return response
            }
        }
        if !group.members.isEmpty {
            let supported = Set(request.protocols.map(\.name))
            let common = group.members.values.allSatisfy { member in member.protocols.contains { supported.contains($0.name) } }
            guard group.protocolType == request.protocolType, common else { return .error(.inconsistentGroupProtocol) }
        }
        group.protocolType = request.protocolType
        let rebalanceMs = request.rebalanceTimeoutMs > 0 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs
        let previous = group.members[memberId]
        let waiter = Reply<JoinGroupResponse>(keys: [group.id], expired: .error(.notCoordinator)) { _ in nil }
        var member = Member(
            id: memberId, instanceId: request.groupInstanceId, clientId: clientId, clientHost: clientHost, sessionTimeout: sessionTimeout,
            rebalanceTimeout: .milliseconds(Int(rebalanceMs)), protocols: request.protocols.map { ($0.name, $0.metadata) }, joinWaiter: waiter)
        member.assignment = previous?.assignment ?? ByteBuffer()
        if previous == nil { group.order.append(memberId) }
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
    /// the longest rebalance timeout among them.
    private func prepareRebalance(_ groupId: String) {
        guard var group = groups[groupId] else { return }
        for id in group.order {
            guard let waiter = group.members[id]?.syncWaiter else { continue }
            group.members[id]?.syncWaiter = nil
            waiter.complete(.error(.rebalanceInProgress))
            startSession(of: group.members[id]!, in: groupId)
        }
        group.state = .preparingRebalance
        let timeout = group.members.values.map(\.rebalanceTimeout).max() ?? .zero
        arm(.rebalance(group: groupId), at: loop.now + TimeAmount(timeout))
        groups[groupId] = group
    }

    /// Completes the rebalance once every member has rejoined (or, at its deadline, dropping those
    /// that did not).
    private func completeJoinIfReady(_ groupId: String, deadlinePassed: Bool = false) {
        guard var group = groups[groupId], group.state == .preparingRebalance else { return }
        let missing = group.order.filter { group.members[$0]?.joinWaiter == nil }
        guard missing.isEmpty || deadlinePassed else { return }
        deadlines.cancel(.rebalance(group: groupId))
        for id in missing {
            logger.info("member did not rejoin within the rebalance timeout; removed", metadata: ["group": "\(groupId)", "member": "\(id)"])
            remove(id, from: &group)
        }
        guard !group.members.isEmpty else {
            groups[groupId] = group
            becameEmpty(groupId)
            return
        }
        group.generation = Group.generation(after: group.generation)
        if group.leader.map({ group.members[$0] == nil }) ?? true { group.leader = group.order.first }
        let leader = group.members[group.leader!]!
        // The leader's most preferred protocol that every member supports.
        group.protocolName = leader.protocols.map(\.name).first { name in
            group.members.values.allSatisfy { $0.protocols.contains { $0.name == name } }
        }
        group.state = .completingRebalance
        let members = group.order.compactMap { id -> JoinGroupResponse.JoinGroupResponseMember? in
            guard let member = group.members[id] else { return nil }
            var entry = JoinGroupResponse.JoinGroupResponseMember()
            entry.memberId = id
            entry.groupInstanceId = member.instanceId
            entry.metadata = member.protocols.first { $0.name == group.protocolName }?.metadata ?? ByteBuffer()
            return entry
        }
        for id in group.order {
            guard let waiter = group.members[id]?.joinWaiter else { continue }
            group.members[id]?.joinWaiter = nil
            startSession(of: group.members[id]!, in: groupId)
            var response = JoinGroupResponse()
            response.generationId = group.generation
            response.protocolType = group.protocolType
            response.protocolName = group.protocolName
            response.leader = group.leader!
            response.memberId = id
            response.members = id == group.leader ? members : []
            waiter.complete(response)
        }
        groups[groupId] = group
    }

    private func remove(_ id: String, from group: inout Group) {
        group.members[id]?.joinWaiter?.complete(.error(.unknownMemberId))
        group.members[id]?.syncWaiter?.complete(.error(.unknownMemberId))
        deadlines.cancel(.session(group: group.id, member: id))
        group.members[id] = nil
        group.order.removeAll { $0 == id }
        if group.leader == id { group.leader = nil }
    }

    // MARK: - SyncGroup

    func sync(_ request: SyncGroupRequest) async -> SyncGroupResponse {
        guard var group = groups[request.groupId], let member = group.members[request.memberId] else { return .error(.unknownMemberId) }
        guard request.generationId == group.generation else { return .error(.illegalGeneration) }
        startSession(of: member, in: group.id)
        switch group.state {
        case .empty, .preparingRebalance:
            return .error(.rebalanceInProgress)
        case .stable:
            return group.syncResponse(for: request.memberId)
        case .completingRebalance:
            if request.memberId == group.leader {
                let assignments = Dictionary(request.assignments.map { ($0.memberId, $0.assignment) }, uniquingKeysWith: { first, _ in first })
                for id in group.order { group.members[id]?.assignment = assignments[id] ?? ByteBuffer() }
                group.state = .stable
                for id in group.order {
                    guard let waiter = group.members[id]?.syncWaiter else { continue }
                    group.members[id]?.syncWaiter = nil
                    waiter.complete(group.syncResponse(for: id))
                    startSession(of: group.members[id]!, in: group.id)
                }
                groups[group.id] = group
                return group.syncResponse(for: request.memberId)
            }
            let waiter = Reply<SyncGroupResponse>(keys: [group.id], expired: .error(.notCoordinator)) { _ in nil }
            member.syncWaiter?.complete(.error(.rebalanceInProgress))  // a client retry
            groups[group.id]?.members[request.memberId]?.syncWaiter = waiter
            return await waiter.outcome()
        }
    }

    // MARK: - Heartbeat, LeaveGroup, deadlines

    func heartbeat(groupId: String, memberId: String, generation: Int32) -> ErrorCode {
        guard let group = groups[groupId], let member = group.members[memberId] else { return .unknownMemberId }
        startSession(of: member, in: groupId)
        if group.state == .preparingRebalance { return .rebalanceInProgress }
        guard generation == group.generation else { return .illegalGeneration }
        return .none
    }

    /// Removes members; the rest rebalance. Returns an error per member id.
    func leave(groupId: String, memberIds: [String]) -> [ErrorCode] {
        guard var group = groups[groupId] else { return memberIds.map { _ in .unknownMemberId } }
        let results = memberIds.map { group.members[$0] == nil ? ErrorCode.unknownMemberId : .none }
        let leaving = memberIds.filter { group.members[$0] != nil }
        guard !leaving.isEmpty else { return results }
        for id in leaving { remove(id, from: &group) }
        groups[groupId] = group
        membershipChanged(groupId)
        return results
    }

    /// (Re)starts a member's session, at each request of its and each answer to one that waited: it is
    /// dropped unless it heartbeats, joins or syncs within its session timeout, or still waits in a
    /// JoinGroup or SyncGroup then (Kafka keeps such a member: its client waits, not heartbeating).
    private func startSession(of member: Member, in groupId: String) {
        arm(.session(group: groupId, member: member.id), at: loop.now + TimeAmount(member.sessionTimeout))
    }

    /// Keeps one timer at the deadline of the oldest unused member id, none when there is none.
    private func armPendingMembers() {
        guard let deadline = pending.nextDeadline() else { return deadlines.cancel(.pendingMembers) }
        if deadlines.deadline(.pendingMembers) != deadline { arm(.pendingMembers, at: deadline) }
    }

    /// Arms `key`'s timer; firing on the loop that is this actor's executor, it runs `expire` there.
    private func arm(_ key: GroupDeadlines.Key, at deadline: NIODeadline) {
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
            completeJoinIfReady(groupId, deadlinePassed: true)
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
    /// the coordinator again) and cancels every timer: the broker is stopping.
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

    /// The last member left: the group is Empty (Kafka keeps such a group while it has committed
    /// offsets, and removes it otherwise: nothing would be lost, and a storm of joins to new group ids
    /// must not leave one behind each).
    private func becameEmpty(_ groupId: String) {
        deadlines.cancel(.rebalance(group: groupId))
        guard hasOffsets(groupId) else {
            groups[groupId] = nil
            return
        }
        guard var group = groups[groupId] else { return }
        group.state = .empty
        group.generation = Group.generation(after: group.generation)
        group.leader = nil
        group.protocolName = nil
        groups[groupId] = group
    }

    // MARK: - Offsets' generation check, listing

    /// Whether a commit with this generation and member may write: simple consumers (generation -1, no
    /// member) commit to empty groups; group members only within their current generation. A simple
    /// consumer's commit to a group with members gets UNKNOWN_MEMBER_ID, as in Kafka (it would undo
    /// what the members commit: Kafka's reset-offsets tool relies on it).
    /// An allowed commit is in flight until `commitFinished`.
    func commitCheck(groupId: String, memberId: String, generation: Int32) -> ErrorCode {
        let allowed = commitAllowed(groupId: groupId, memberId: memberId, generation: generation)
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

    private func commitAllowed(groupId: String, memberId: String, generation: Int32) -> ErrorCode {
        guard !deleting.contains(groupId) else { return .coordinatorNotAvailable }
        guard let group = groups[groupId], !group.members.isEmpty else {
            return generation < 0 && memberId.isEmpty ? .none : .unknownMemberId
        }
        guard group.members[memberId] != nil else { return .unknownMemberId }
        guard generation == group.generation else { return .illegalGeneration }
        if group.state == .preparingRebalance { return .rebalanceInProgress }
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

    func syncResponse(for memberId: String) -> SyncGroupResponse {
        var response = SyncGroupResponse()
        response.protocolType = protocolType
        response.protocolName = protocolName
        response.assignment = members[memberId]?.assignment ?? ByteBuffer()
        return response
    }
}

extension JoinGroupResponse {
    static func error(_ code: ErrorCode) -> JoinGroupResponse {
        var response = JoinGroupResponse()
        response.errorCode = code.rawValue
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
