/// A broken guarantee: what the check expected and what the log held.
public struct TortureViolation: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// Acknowledged records found missing (0 for violations of other kinds).
    public var lost: Int
    /// The check could not read the log (a storage call failed while checking).
    public var readFailed: Bool

    public init(_ message: String, lost: Int = 0, readFailed: Bool = false) {
        self.message = message
        self.lost = lost
        self.readFailed = readFailed
    }

    public var description: String { message }
}

/// Throws a violation unless `condition` holds.
func require(_ condition: Bool, _ message: @autoclosure () -> String, lost: @autoclosure () -> Int = 0) throws(TortureViolation) {
    if !condition { throw TortureViolation(message(), lost: lost()) }
}
