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

/// Metrics of a paired benchmark: Samsa's rate, the baseline's rate, and Samsa's as a percentage of
/// the baseline's, each pair measured back to back so drift of this shared machine cancels out.
enum Paired {
    static let samsa = BenchmarkMetric.custom("Samsa MB/s", polarity: .prefersLarger, useScalingFactor: false)
    static let baseline = BenchmarkMetric.custom("baseline MB/s", polarity: .prefersLarger, useScalingFactor: false)
    static let percent = BenchmarkMetric.custom("Samsa/baseline %", polarity: .prefersLarger, useScalingFactor: false)
    static var configuration: Benchmark.Configuration {
        Benchmark.Configuration(
            metrics: [samsa, baseline, percent], warmupIterations: 10, maxDuration: .seconds(3), maxIterations: 20_000)
    }
}

/// Runs Samsa's operation and its baseline alternately (order swapped every run) on `megabytes` of input.
func measurePaired(
    _ benchmark: Benchmark, megabytes: Double, samsa: () throws -> Void, baseline: () throws -> Void
) rethrows {
    for iteration in benchmark.scaledIterations {
        var samsaTime: UInt64 = 0, baselineTime: UInt64 = 0
        for step in 0..<2 {
            let runSamsa = (step == 0) == iteration.isMultiple(of: 2)
            let start = nanoseconds()
            if runSamsa { try samsa() } else { try baseline() }
            let elapsed = max(nanoseconds() - start, 1)
            if runSamsa { samsaTime = elapsed } else { baselineTime = elapsed }
        }
        benchmark.measurement(Paired.samsa, Int(megabytes * 1e9 / Double(samsaTime)))
        benchmark.measurement(Paired.baseline, Int(megabytes * 1e9 / Double(baselineTime)))
        benchmark.measurement(Paired.percent, Int(100 * Double(baselineTime) / Double(samsaTime)))
    }
}

/// A configuration for rate benchmarks: a short warm-up, a few seconds each.
func rateConfiguration(_ metric: BenchmarkMetric) -> Benchmark.Configuration {
    Benchmark.Configuration(
        metrics: [metric, .wallClock], warmupIterations: 10, maxDuration: .seconds(2), maxIterations: 20_000)
}
