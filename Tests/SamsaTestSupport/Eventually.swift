/// Waiting in tests for a state the code under test reaches on its own: the condition is checked,
/// then the task sleeps (`Task.sleep`, never a thread) until the next check, up to a deadline.

/// Thrown when `eventually` gives up.
public struct Timeout: Error, CustomStringConvertible {
    public var what: String
    public init(what: String) { self.what = what }
    public var description: String { "timed out waiting until \(what)" }
}

/// Polls `probe` until it returns a value, every `interval`, for at most `timeout`; nil when it never did.
/// Errors `probe` throws are passed on.
private func poll<Value>(timeout: Duration, every interval: Duration, _ probe: () async throws -> Value?) async throws -> Value? {
    let deadline = ContinuousClock.now + timeout
    while true {
        if let value = try await probe() { return value }
        guard ContinuousClock.now < deadline else { return nil }
        try await Task.sleep(for: interval)
    }
}

/// Waits until `condition` holds; throws `Timeout` after `timeout` (and whatever `condition` throws).
public func eventually(
    _ what: String, timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(20), _ condition: () async throws -> Bool
) async throws {
    guard try await poll(timeout: timeout, every: interval, { try await condition() ? () : nil }) != nil else { throw Timeout(what: what) }
}

/// Waits until `probe` returns a value and returns it; a probe that throws counts as "not yet"
/// (a server still starting). Throws `Timeout` after `timeout`.
public func eventually<Value>(
    _ what: String, timeout: Duration = .seconds(60), every interval: Duration = .milliseconds(100), _ probe: () async throws -> Value?
) async throws -> Value {
    guard let value = try await poll(timeout: timeout, every: interval, { try? await probe() }) else { throw Timeout(what: what) }
    return value
}

/// Whether `condition` came to hold within `timeout` (checked every 10 ms), for `#expect`.
public func eventually(_ timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}
