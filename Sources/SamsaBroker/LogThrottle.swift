import Synchronization

/// Says yes at most once per interval: for log lines a flood would otherwise repeat (a full request
/// memory pool, a listener at its connection limit, connections closed for malformed requests).
/// Thread-safe.
final class LogThrottle: Sendable {
    private struct State {
        var last: ContinuousClock.Instant?
        /// Events since the last one let through, this one included.
        var since = 0
    }

    private let interval: Duration
    private let state = Mutex(State())

    init(every interval: Duration) { self.interval = interval }

    func allows() -> Bool { admit() != nil }

    /// Counts an event; when the interval has passed since the last one let through, lets this one
    /// through and returns how many events came since that one (this one included), else nil.
    func admit() -> Int? {
        let now = ContinuousClock.now
        return state.withLock { state in
            state.since += 1
            if let previous = state.last, now - previous < interval { return nil }
            defer {
                state.last = now
                state.since = 0
            }
            return state.since
        }
    }
}
