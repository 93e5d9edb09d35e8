import Benchmark
import Glibc

/// Rates as custom metrics (median = p50 in the output), so figures read directly in the unit the
/// issue asks for rather than as iterations per second.
enum Rate {
    static let megabytesPerSecond = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)
    static let recordsPerSecond = BenchmarkMetric.custom("records/s", polarity: .prefersLarger, useScalingFactor: false)
}

@inline(__always)
func nanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Runs `body` once per iteration and records `units` per second for each run.
func measureRate(
    _ benchmark: Benchmark, _ metric: BenchmarkMetric, unitsPerRun: Double, _ body: () throws -> Void
) rethrows {
    for _ in benchmark.scaledIterations {
        let start = nanoseconds()
        try body()
        let elapsed = max(nanoseconds() - start, 1)
        benchmark.measurement(metric, Int(unitsPerRun * 1e9 / Double(elapsed)))
    }
}

/// A configuration for rate benchmarks: a short warm-up, a few seconds each.
func rateConfiguration(_ metric: BenchmarkMetric) -> Benchmark.Configuration {
    Benchmark.Configuration(
        metrics: [metric, .wallClock], warmupIterations: 10, maxDuration: .seconds(2), maxIterations: 20_000)
}
