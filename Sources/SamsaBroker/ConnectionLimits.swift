import Glibc
import Synchronization

/// A listener's open connections, in all and per IP address, against `max.connections`,
/// `max.connections.per.ip` and the room the process's descriptor limit leaves (see
/// `DescriptorCeiling`). Thread-safe: connections open and close on every event loop.
final class ConnectionLimits: Sendable {
    enum Admission: Sendable, Equatable {
        case admitted
        /// `max.connections`, or the descriptor ceiling, is reached.
        case full
        /// The peer's address has `max.connections.per.ip` open already.
        case tooManyFromAddress
    }

    let maxConnections: Int
    let maxPerAddress: Int
    /// How many connections the descriptor limit leaves room for now (asked at each accept: the
    /// broker's own files come and go).
    private let descriptorRoom: @Sendable () -> Int
    private let state = Mutex(State())

    private struct State {
        var open = 0
        var perAddress: [String: Int] = [:]
        /// The listener stopped accepting for want of room.
        var listenerWaiting = false
    }

    init(maxConnections: Int, maxPerAddress: Int = .max, descriptorRoom: @escaping @Sendable () -> Int = { .max }) {
        self.maxConnections = maxConnections
        self.maxPerAddress = maxPerAddress
        self.descriptorRoom = descriptorRoom
    }

    /// Connections open now.
    var open: Int { state.withLock { $0.open } }

    /// The most connections allowed now: `max.connections` or what the descriptors leave, the lower.
    var ceiling: Int { min(maxConnections, descriptorRoom()) }

    /// Whether one more connection would be admitted (from an address not at its own limit); when
    /// not, the listener is noted as waiting, and the next `release` says so.
    func hasRoomElseWait() -> Bool {
        let ceiling = ceiling
        return state.withLock { state in
            if state.open < ceiling { return true }
            state.listenerWaiting = true
            return false
        }
    }

    /// Counts a new connection from `address` (nil: not an IP peer, counted in the total only)
    /// unless a limit refuses it. An admitted one is given back with `release`.
    func admit(address: String?) -> Admission {
        let ceiling = ceiling
        return state.withLock { state in
            guard state.open < ceiling else { return .full }
            if let address {
                let count = state.perAddress[address, default: 0]
                guard count < maxPerAddress else { return .tooManyFromAddress }
                state.perAddress[address] = count + 1
            }
            state.open += 1
            return .admitted
        }
    }

    /// Gives back an admitted connection; true when the listener waits for the room (so wake it).
    func release(address: String?) -> Bool {
        state.withLock { state in
            state.open -= 1
            if let address, let count = state.perAddress[address] {
                state.perAddress[address] = count > 1 ? count - 1 : nil
            }
            defer { state.listenerWaiting = false }
            return state.listenerWaiting
        }
    }
}

/// How many client connections fit under the process's descriptor limit (`ulimit -n`).
///
/// A process out of descriptors does not just refuse connections: libdispatch (under Swift's task
/// executor on Linux) checks its worker threads every second by opening `/proc/<tid>/stat` whenever
/// work is queued, and traps if that open fails (`_dispatch_workq_count_runnable_workers`: "workq:
/// registered worker exited prematurely"). So the broker never lets client connections take the
/// descriptors its own work needs: `reserve` for the process (standard streams, the lock file,
/// event loops, ZooKeeper and replica connections, files being written), the metrics port's
/// connections, and the open segment files (those open now plus room for the cache to fill).
struct DescriptorCeiling: Sendable {
    /// Descriptors kept for the process's own needs besides segment files and metrics connections.
    static let reserve = 64

    /// The soft limit (`ulimit -n`); Int.max when there is none.
    let limit: Int
    /// Descriptors kept for everything but client connections.
    let kept: @Sendable () -> Int

    var room: Int { limit == .max ? .max : max(limit - kept(), 0) }

    /// The process's soft RLIMIT_NOFILE.
    static func processLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return .max }
        // RLIM_INFINITY is all ones.
        return limit.rlim_cur > UInt(Int.max) ? .max : Int(limit.rlim_cur)
    }

    /// Idle segment files to keep open for a process limited to `limit` descriptors: the storage
    /// default (256), less with a small limit so that connections still have room.
    static func segmentFileCache(limit: Int) -> Int {
        min(256, max(16, limit / 8))
    }
}
