import Logging

/// How the broker reports connections it closes for malformed requests (garbage, a size outside the
/// limits, a field that does not decode): each at debug, and a warning at most once per interval
/// naming the latest and how many were closed since the last warning. A client that floods garbage
/// cannot flood the log (a 10-minute hostile soak wrote 6,800 warning lines before); the metric
/// `samsa_request_errors_total{reason="malformed"}` still counts every one.
final class MalformedRequestLog: Sendable {
    private let interval: Duration
    private let throttle: LogThrottle

    init(every interval: Duration = .seconds(60)) {
        self.interval = interval
        throttle = LogThrottle(every: interval)
    }

    func closing(peer: String, reason: String, logger: Logger) {
        let metadata: Logger.Metadata = ["peer": "\(peer)", "reason": "\(reason)"]
        if let count = throttle.admit() {
            logger.warning(
                "closing a connection that sent a malformed request (at most one such warning per \(interval); the rest at debug)",
                metadata: metadata.merging(["closed_since_last_warning": "\(count)"]) { $1 })
        } else {
            logger.debug("closing a connection that sent a malformed request", metadata: metadata)
        }
    }
}
