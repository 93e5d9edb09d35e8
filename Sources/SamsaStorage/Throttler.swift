import Glibc
import Synchronization

/// Keeps the cleaner's I/O under a rate (Kafka's `Throttler`, for `log.cleaner.io.max.bytes.per.second`),
/// shared by every cleaner thread: each records the bytes it read or wrote, and sleeps (its own thread,
/// never a cooperative one, holding no lock) while the rate over the current window is above the limit.
final class Throttler: Sendable {
    /// Bytes per second; nil: unlimited.
    let bytesPerSecond: Int64?
    private let window = Mutex<(start: ContinuousClock.Instant, bytes: Int64)>((.now, 0))
    /// Length of a measuring window (Kafka checks every 300 ms).
    private static let checkInterval = Duration.milliseconds(300)

    init(bytesPerSecond: Int64?) {
        self.bytesPerSecond = bytesPerSecond.flatMap { $0 > 0 ? $0 : nil }
    }

    /// Counts `bytes` of I/O; sleeps if the window's rate is over the limit.
    func throttle(_ bytes: Int) {
        guard let limit = bytesPerSecond, bytes > 0 else { return }
        let pause: Duration? = window.withLock { window in
            window.bytes += Int64(bytes)
            let elapsed = window.start.duration(to: .now)
            guard elapsed >= Self.checkInterval || window.bytes >= limit else { return nil }
            let needed = Duration.milliseconds(window.bytes * 1000 / limit)
            let pause = needed > elapsed ? needed - elapsed : nil
            // The next window starts when this sleep ends.
            window = (.now + (pause ?? .zero), 0)
            return pause
        }
        guard let pause else { return }
        let (seconds, attoseconds) = pause.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
