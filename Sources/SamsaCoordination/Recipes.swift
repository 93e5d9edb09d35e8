import Synchronization

extension CoordinationSession {
    /// Creates `path` and any missing parents as empty persistent nodes (Curator's `creatingParentsIfNeeded`).
    public func createPath(_ path: String) async throws {
        try NodePath.validate(path)
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            do {
                _ = try await create(current, data: [], mode: .persistent)
            } catch let error as CoordinationError where error.code == .nodeExists {
                continue
            }
        }
    }
}

/// Leader election on an ephemeral-sequential node per candidate (ZooKeeper's recipe, as Curator's
/// LeaderLatch runs it): the candidate with the lowest number leads; every other one watches only its
/// predecessor, so a leader's departure wakes one candidate, not all. Before acting as leader a
/// candidate checks the lowest node belongs to its own session. Leadership is lost at once when the
/// session is suspended or ends, when the candidate's node disappears, or on `resign()`.
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
    private let task = Mutex<Task<Void, Never>?>(nil)

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

    /// Enters the election: creates this candidate's node, then follows the election in the
    /// background until `resign()` or the session ends.
    public func start() async throws {
        try await session.createPath(path)
        let node = try await session.create(NodePath.join(path, "n_"), data: Array(candidate.utf8), mode: .ephemeralSequential)
        state.withLock { $0.node = node }
        let follower = Task { [self] in await follow(node) }
        task.withLock { $0 = follower }
        // Session trouble ends leadership at once, before any other candidate can be told it leads.
        Task { [self] in
            for await sessionState in session.states() where sessionState != .connected {
                setLeading(false)
                if sessionState == .expired || sessionState == .closed { stop() }
            }
        }
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

    private func stop() {
        task.withLock { $0?.cancel() }
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
            state.leading = leading
            return Array(state.observers.values)
        }
        for observer in observers { observer.yield(leading) }
    }

    private func follow(_ node: String) async {
        let name = NodePath.name(of: node)
        while !Task.isCancelled && !state.withLock({ $0.stopped }) {
            do {
                let candidates = try await session.children(path, watch: false).names.filter { $0.hasPrefix("n_") }.sorted()
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
                    _ = try await watch.event()
                    setLeading(false)
                } else {
                    // Watch only the predecessor; when it goes, look again.
                    let predecessor = NodePath.join(path, candidates[index - 1])
                    let (stat, watch) = try await session.exists(predecessor, watch: true)
                    if stat != nil, let watch { _ = try await watch.event() }
                }
            } catch {
                setLeading(false)
                if session.state == .expired || session.state == .closed {
                    stop()
                    return
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }
}

/// Group membership: one ephemeral node per member under a directory, and the live member list
/// followed through child watches.
public final class Membership: Sendable {
    public let session: any CoordinationSession
    public let path: String

    public init(session: any CoordinationSession, path: String) {
        self.session = session
        self.path = path
    }

    /// Registers `member` (an ephemeral node named after it, holding `data`) until the session ends
    /// or `leave(member)`.
    public func join(_ member: String, data: [UInt8] = []) async throws {
        try await session.createPath(path)
        _ = try await session.create(NodePath.join(path, member), data: data, mode: .ephemeral)
    }

    public func leave(_ member: String) async throws {
        try await session.delete(NodePath.join(path, member), version: -1)
    }

    /// The current members, sorted.
    public func members() async throws -> [String] {
        try await session.children(path, watch: false).names.sorted()
    }

    /// The member list now and after every change, until the session ends or the task is cancelled.
    public func changes() -> AsyncThrowingStream<[String], any Error> {
        let session = self.session
        let path = self.path
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await session.createPath(path)
                    while !Task.isCancelled {
                        let (names, _, watch) = try await session.children(path, watch: true)
                        continuation.yield(names.sorted())
                        guard let watch else { break }
                        let event = try await watch.event()
                        if event.type == .sessionEnded { break }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
