import Foundation
import Glibc
import Histogram
import NIOCore
import SamsaRecords
import SamsaTool

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

/// A fresh directory under the benchmark's scratch space, removed by `cleanUp`.
func scratchDirectory(_ name: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-bench-\(name)-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func cleanUp(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// One batch of JSON events of `recordSize` bytes, about `batchBytes` long, as a producer would send.
func makeBatch(recordSize: Int, batchBytes: Int, seed: UInt64 = 1) -> RecordBatch {
    var events = SyntheticEvents(seed: seed)
    var builder = RecordBatchBuilder(capacity: batchBytes + 4096)
    while builder.uncompressedSize + recordSize + 32 <= batchBytes || builder.recordCount == 0 {
        builder.append(timestamp: 1_764_000_000_000 + Int64(builder.recordCount), key: events.nextKey(), value: events.next(size: recordSize))
    }
    return try! builder.build()
}

/// Writes `bytes` to `fd` with write(2) until done.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        precondition(n > 0, "write failed: \(errno)")
        done += n
    }
}

func formatRate(_ bytesPerSecond: Double) -> String { String(format: "%.0f MB/s", bytesPerSecond / 1e6) }
func formatCount(_ perSecond: Double) -> String {
    perSecond >= 1e6 ? String(format: "%.2f M/s", perSecond / 1e6) : String(format: "%.1f k/s", perSecond / 1e3)
}
func formatMicros(_ nanoseconds: UInt64) -> String { String(format: "%.1f µs", Double(nanoseconds) / 1e3) }

/// Prints a result row: name, figure, and its comparison.
func report(_ name: String, _ figure: String, _ comparison: String = "") {
    print(name.padding(toLength: 58, withPad: " ", startingAt: 0) + figure.padding(toLength: max(26, figure.count + 2), withPad: " ", startingAt: 0) + comparison)
    fflush(nil)
}

struct Latencies {
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    mutating func record(_ nanoseconds: UInt64) { _ = histogram.record(nanoseconds) }
    mutating func merge(_ other: Latencies) { histogram.add(other.histogram) }
    var summary: String {
        "p50 \(formatMicros(histogram.valueAtPercentile(50))), p99 \(formatMicros(histogram.valueAtPercentile(99))), p99.9 \(formatMicros(histogram.valueAtPercentile(99.9)))"
    }
}
