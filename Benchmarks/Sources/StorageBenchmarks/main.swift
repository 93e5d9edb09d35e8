import Foundation
import Glibc
import NIOCore
import SamsaRecords
import SamsaStorage

// Storage benchmarks (issue 3). Release build: `swift run -c release StorageBenchmarks [--quick]`.
// Each figure is a median of several runs, printed beside a baseline measured in the same run.
let quick = CommandLine.arguments.contains("--quick")
let runs = quick ? 3 : 5
print("Samsa storage benchmarks (\(quick ? "quick" : "full") run, medians of \(runs))")

await appendThroughput()
await groupCommitLatency()
try sequentialRead()
try randomLookups()
try await openAndRecovery()
