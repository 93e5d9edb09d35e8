// swift-tools-version: 6.1
import PackageDescription

// Benchmarks for Samsa, on ordo-one/package-benchmark. Run from this directory:
//   swift package --allow-writing-to-directory .benchmarkBaselines/ benchmark
// Each figure is printed next to a baseline measured in the same run (a direct C-library call, a plain
// syscall loop); CLZ4Direct/CZstdDirect give the baselines their own, unwrapped view of the libraries.
let package = Package(
    name: "SamsaBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Samsa", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", exact: "0.2.0"),
        .package(url: "https://github.com/ordo-one/benchmark.git", exact: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
    ],
    targets: [
        .systemLibrary(name: "CLZ4Direct", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CZstdDirect", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .executableTarget(
            name: "RecordsBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "SamsaRecords", package: "Samsa"),
                .product(name: "SamsaTool", package: "Samsa"),
                .product(name: "NIOCore", package: "swift-nio"),
                "CLZ4Direct", "CZstdDirect",
            ],
            path: "Benchmarks/RecordsBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Storage workloads need gigabytes of set-up, concurrent appenders and latency histograms: a
        // plain release executable that prints each figure beside its same-run baseline.
        //   swift run -c release StorageBenchmarks [--quick]
        .executableTarget(
            name: "StorageBenchmarks",
            dependencies: [
                .product(name: "SamsaStorage", package: "Samsa"),
                .product(name: "SamsaRecords", package: "Samsa"),
                .product(name: "SamsaTool", package: "Samsa"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // The embedded durable queue against SQLite (GRDB), the store a Swift app would pick instead,
        // plus resident-memory figures. `swift run -c release QueueBenchmarks [--quick]`
        .executableTarget(
            name: "QueueBenchmarks",
            dependencies: [
                .product(name: "Samsa", package: "Samsa"),
                .product(name: "SamsaTool", package: "Samsa"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Coordination latency: the embedded backend, Samsa's ZooKeeper client and kazoo against the same
        // real ZooKeeper (started here). `swift run -c release CoordinationBenchmarks`
        .executableTarget(
            name: "CoordinationBenchmarks",
            dependencies: [
                .product(name: "SamsaCoordination", package: "Samsa"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
