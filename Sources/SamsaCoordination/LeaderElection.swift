import Foundation
import Synchronization

/// Leader election on an ephemeral-sequential node per candidate (ZooKeeper's recipe, as Curator's
/// LeaderLatch runs it): the candidate with the lowest number leads; every other one watches only its
/// predecessor, so a leader's departure wakes one candidate, not all. Before acting as leader a
/// candidate checks the lowest node belongs to its own session.
///
/// Leadership is lost at once when the session is suspended or ends, when the candidate's node
/// disappears, or on `resign()`. When a suspended session reconnects, every candidate looks again,
/// so a leader whose node survived the outage leads again.
///
/// A candidate's node is "protected" (Curator's term): its name holds a unique token, so after a
/// create whose reply was lost (`connectionLoss`), the candidate finds the node the server may have
/// made instead of adding a second one that would stand in everyone's way.
public final class LeaderElection: Sendable {
    public let session: any CoordinationSession
    /// The election's directory: candidates' nodes are its children.
    public let path: String
    /// Stored in the candidate's node, for others to see who leads.
    public let candidate: String

    private struct State {
        var node: String?
        var leading = false
        var stopped = false
        var observers: [Int: AsyncStream<Bool>.Continuation] = [:]
        var nextObserver = 0
    }

    private let state = Mutex(State())
    private let tasks = Mutex<[Task<Void, Never>]>([])
    /// Signalled when the session (re)connects: the follower looks at the election again.
    private let reconnected = Wakeups()
    /// The start of this candidate's node name: a unique token, then the server's sequence number.
    private let prefix = "n_" + UUID().uuidString.lowercased() + "-"

    public init(session: any CoordinationSession, path: String, candidate: String) {
        self.session = session
        self.path = path
        self.candidate = candidate
    }

    /// True while this candidate leads and its session is connected.
    public var isLeader: Bool { state.withLock { $0.leading } && session.state == .connected }

    /// The candidate's node, once created.
    public var node: String? { state.withLock { $0.node } }

    /// Leadership changes (true: became leader, false: lost it), starting with the current value.
    public func leadership() -> AsyncStream<Bool> {
        let (stream, continuation) = AsyncStream<Bool>.makeStream()
        state.withLock { state in
            continuation.yield(state.leading)
            state.observers[state.nextObserver] = continuation
            state.nextObserver += 1
        }
        return stream
    }

    /// Enters the election: creates this candidate's node (retrying through connection losses),
    /// then follows the election in the background until `resign()` or the session ends.
    public func start() async throws {
        try await retryingConnectionLoss { try await session.createPath(path) }
        let node = try await createNode()
        state.withLock { $0.node = node }
        // Session trouble ends leadership at once, before any other candidate can be told it leads.
        let monitor = Task { [self] in
            for await sessionState in session.states() {
                if sessionState == .connected {
                    reconnected.signal()
                } else {
                    setLeading(false)
                    if sessionState == .expired || sessionState == .closed { stop() }
                }
            }
        }
        let follower = Task { [self] in await follow(node) }
        tasks.withLock { $0 = [monitor, follower] }
    }

    /// Waits until this candidate leads (or throws when it can no longer lead: session ended, resigned).
    public func awaitLeadership() async throws {
        for await leading in leadership() {
            if leading { return }
            if state.withLock({ $0.stopped }) { break }
        }
        throw CoordinationError(.sessionExpired, path: path, "the candidate left the election")
    }

    /// Leaves the election: deletes this candidate's node.
    public func resign() async {
        let node = state.withLock { $0.node }
        stop()
        if let node { try? await session.delete(node, version: -1) }
    }

    /// Creates the candidate's node once: after a lost reply, finds it by its token before retrying.
    private func createNode() async throws -> String {
        var mayExist = false
        while true {
            do {
                if mayExist, let existing = try await session.children(path).first(where: { $0.hasPrefix(prefix) }) {
                    return NodePath.join(path, existing)
                }
                return try await session.create(NodePath.join(path, prefix), data: Array(candidate.utf8), mode: .ephemeralSequential)
            } catch let error as CoordinationError where error.code == .connectionLoss && !Self.isFinal(session.state) {
                mayExist = true
            }
        }
    }

    private func retryingConnectionLoss(_ body: () async throws -> Void) async throws {
        while true {
            do {
                return try await body()
            } catch let error as CoordinationError where error.code == .connectionLoss && !Self.isFinal(session.state) {
                continue
            }
        }
    }

    private static func isFinal(_ state: SessionState) -> Bool { state == .expired || state == .closed }

    /// The candidates' node names in election order: by sequence number (the last 10 characters),
    /// whatever token precedes it.
    static func ordered(_ names: [String]) -> [String] {
        names.filter { $0.hasPrefix("n_") }.sorted { ($0.suffix(10), $0) < ($1.suffix(10), $1) }
    }

    private func stop() {
        for task in tasks.withLock({ $0 }) { task.cancel() }
        let observers = state.withLock { state -> [AsyncStream<Bool>.Continuation] in
            state.stopped = true
            state.leading = false
            defer { state.observers.removeAll() }
            return Array(state.observers.values)
        }
        for observer in observers {
            observer.yield(false)
            observer.finish()
        }
    }

    private func setLeading(_ leading: Bool) {
        let observers = state.withLock { state -> [AsyncStream<Bool>.Continuation] in
            guard state.leading != leading, !(leading && state.stopped) else { return [] }
            // Under the lock: a suspension seen after this check clears it again (the monitor runs after).
            guard !leading || session.state == .connected else { return [] }
            state.leading = leading
            return Array(state.observers.values)
        }
        for observer in observers { observer.yield(leading) }
    }

    private func follow(_ node: String) async {
        let name = NodePath.name(of: node)
        while !Task.isCancelled && !state.withLock({ $0.stopped }) {
            // A reconnect from now on wakes the waits below.
            let epoch = reconnected.epoch
            do {
                let candidates = Self.ordered(try await session.children(path, watch: false).names)
                guard let index = candidates.firstIndex(of: name) else {
                    // Our node is gone (the session ended, or someone deleted it): out of the election.
                    setLeading(false)
                    stop()
                    return
                }
                if index == 0 {
                    // Lowest: lead only if the node is really ours, then watch it for deletion.
                    let (stat, watch) = try await session.exists(node, watch: true)
                    guard let stat, stat.ephemeralOwner == session.sessionID, let watch else { continue }
                    setLeading(true)
                    if await firstOf(watch, orReconnectAfter: epoch) { setLeading(false) }
                } else {
                    // Watch only the predecessor; when it goes (or the session reconnects), look again.
                    let predecessor = NodePath.join(path, candidates[index - 1])
                    let (stat, watch) = try await session.exists(predecessor, watch: true)
                    if stat != nil, let watch { _ = await firstOf(watch, orReconnectAfter: epoch) }
                }
            } catch {
                setLeading(false)
                if Self.isFinal(session.state) {
                    stop()
                    return
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// Waits for `watch` or a reconnect after `epoch`; true if the watch fired.
    private func firstOf(_ watch: Watch, orReconnectAfter epoch: Int) async -> Bool {
        let reconnected = self.reconnected
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await watch.event()) != nil }
            group.addTask {
                await reconnected.wait(after: epoch)
                return false
            }
            let fired = await group.next() ?? false
            group.cancelAll()
            return fired
        }
    }
}

/// A counter of signals that tasks can wait on: `wait(after:)` returns once the count passed the
/// value the waiter saw, so a signal between looking and waiting is not missed. Cancellable.
final class Wakeups: Sendable {
    private struct State {
        var epoch = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }
    private let state = Mutex(State())

    var epoch: Int { state.withLock { $0.epoch } }

    func signal() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.epoch += 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait(after epoch: Int) async {
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    guard state.epoch <= epoch, !Task.isCancelled else { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
