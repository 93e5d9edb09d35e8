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

// `--only NAME` runs one group: append, durable, writepath, read, lookup, open, cleaner.
let only = CommandLine.arguments.firstIndex(of: "--only").map { CommandLine.arguments[$0 + 1] }
func selected(_ name: String) -> Bool { only == nil || only == name }

if selected("append") { await appendThroughput() }
if selected("durable") { await groupCommitLatency() }
if selected("writepath") { durableWritePath() }
if selected("read") { try sequentialRead() }
if selected("lookup") { try randomLookups() }
if selected("open") { try await openAndRecovery() }
if selected("cleaner") { try cleanerBenchmarks() }

