import Foundation
import Glibc

func now() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

func seconds(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1e9 }

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}

func scratchDirectory(_ name: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-queue-bench-\(name)-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func cleanUp(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

func formatCount(_ perSecond: Double) -> String {
    perSecond >= 1e6 ? String(format: "%.2f M/s", perSecond / 1e6) : String(format: "%.1f k/s", perSecond / 1e3)
}

func report(_ name: String, _ figure: String, _ comparison: String = "") {
    print(name.padding(toLength: 62, withPad: " ", startingAt: 0) + figure.padding(toLength: max(24, figure.count + 2), withPad: " ", startingAt: 0) + comparison)
    fflush(nil)
}

/// This process's resident set size in bytes (VmRSS).
func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return kilobytes * 1024
    }
    return 0
}

/// Samples the resident set every 5 ms while `body` runs; returns the peak.
final class PeakResidentSampler: @unchecked Sendable {
    // @unchecked: `peak` and `running` are touched by the sampler thread and read after it stopped
    // (the semaphore orders them).
    private var peak = 0
    private var running = true
    private let stopped = DispatchSemaphore(value: 0)

    static func measure<T>(_ body: () async throws -> T) async rethrows -> (T, peak: Int) {
        let sampler = PeakResidentSampler()
        Thread {
            while sampler.running {
                sampler.peak = max(sampler.peak, residentBytes())
                usleep(5000)
            }
            sampler.stopped.signal()
        }.start()
        let result = try await body()
        sampler.running = false
        sampler.stopped.wait()
        return (result, max(sampler.peak, residentBytes()))
    }
}

func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }
