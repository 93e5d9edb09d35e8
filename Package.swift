// swift-tools-version: 6.1
import PackageDescription

// Layers, lowest first; a module only imports modules above it in this list.
//   CCRC32C, CLZ4, CZstd      C: hardware CRC-32C, system liblz4 / libzstd
//   SamsaRecords              Kafka RecordBatch v2: varints, CRC, codecs, builder, zero-copy view
//   SamsaStorage              segments, mmap'd indexes, the partition log, flushing, recovery
//   Samsa                     the embedded durable queue: topics, producer, consumers, groups
//   SamsaTorture              seeded crash, power-cut and I/O-error torture of the storage engine
//   SamsaCoordination         ZooKeeper-style coordination: embedded backend, ZooKeeper client, recipes
//   SamsaProtocol             the Kafka wire protocol as data (codecs generated from Kafka's schemas), I/O-free
//   SamsaConnection           one pipelined, bounded Kafka connection on SwiftNIO (used by SamsaBroker and SamsaClient)
//   SamsaBroker               a Kafka-protocol broker on SwiftNIO over SamsaStorage (not on `Samsa`)
//   SamsaClient               a native Swift Kafka client on SamsaProtocol (metadata, batching producer, fetch, admin)
//   SamsaTool                 the `samsa` command's subcommands (a library so tests can drive them)
//   samsa                     the executable
let strictSwift: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Samsa",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SamsaRecords", targets: ["SamsaRecords"]),
        .library(name: "SamsaStorage", targets: ["SamsaStorage"]),
        .library(name: "SamsaWaiting", targets: ["SamsaWaiting"]),
        .library(name: "Samsa", targets: ["Samsa"]),
        .library(name: "SamsaCoordination", targets: ["SamsaCoordination"]),
        .library(name: "SamsaProtocol", targets: ["SamsaProtocol"]),
        .library(name: "SamsaConnection", targets: ["SamsaConnection"]),
        .library(name: "SamsaBroker", targets: ["SamsaBroker"]),
        .library(name: "SamsaClient", targets: ["SamsaClient"]),
        .library(name: "SamsaTool", targets: ["SamsaTool"]),
        .executable(name: "samsa", targets: ["samsa"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", exact: "2.0.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", exact: "0.2.0"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
    ],
    targets: [
        .target(name: "CCRC32C"),
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .target(
            name: "SamsaRecords",
            dependencies: [
                "CCRC32C", "CLZ4", "CZstd",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "SamsaWaiting",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "SamsaStorage",
            dependencies: [
                "SamsaRecords",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "Samsa",
            dependencies: [
                "SamsaRecords", "SamsaStorage", "SamsaWaiting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "SamsaTorture",
            dependencies: [
                "SamsaRecords", "SamsaStorage", "Samsa",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "SamsaCoordination",
            dependencies: [
                "SamsaRecords", "SamsaStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "SamsaProtocol",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSwift
        ),
        .target(
            name: "SamsaConnection",
            dependencies: [
                "SamsaProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "SamsaBroker",
            dependencies: [
                "SamsaRecords", "SamsaStorage", "SamsaProtocol", "SamsaCoordination", "SamsaConnection", "SamsaWaiting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "SamsaClient",
            dependencies: [
                "SamsaProtocol", "SamsaRecords", "SamsaConnection",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "SamsaTool",
            dependencies: [
                "SamsaRecords", "SamsaStorage", "Samsa", "SamsaTorture", "SamsaBroker", "SamsaClient",
                "SamsaCoordination", "SamsaProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "samsa",
            dependencies: ["SamsaTool"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SamsaRecordsTests",
            dependencies: [
                "SamsaTestSupport", "SamsaRecords", "CCRC32C",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            exclude: ["Golden"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SamsaStorageTests",
            dependencies: [
                "SamsaTestSupport", "SamsaStorage", "SamsaRecords",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SamsaTests",
            dependencies: [
                "SamsaTestSupport", "Samsa", "SamsaRecords", "SamsaStorage",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SamsaTortureTests",
            dependencies: ["SamsaTestSupport", "SamsaTorture", "SamsaStorage", "SamsaRecords", "samsa"],
            swiftSettings: strictSwift
        ),
        // Test support shared by every test target (never a dependency of Sources/): temporary
        // directories, `eventually`, test bodies off the cooperative pool, a ZooKeeper ensemble of
        // real servers started from Debian's `zookeeper` package.
        .target(
            name: "SamsaTestSupport",
            dependencies: ["SamsaCoordination", "SamsaStorage", .product(name: "Logging", package: "swift-log")],
            path: "Tests/SamsaTestSupport",
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SamsaCoordinationTests",
            dependencies: ["SamsaCoordination", "SamsaTestSupport"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SamsaProtocolTests",
            dependencies: [
                "SamsaTestSupport", "SamsaProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SamsaConnectionTests",
            dependencies: [
                "SamsaConnection", "SamsaProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SamsaBrokerTests",
            dependencies: [
                "SamsaBroker", "SamsaCoordination", "SamsaProtocol", "SamsaRecords", "SamsaStorage", "SamsaTestSupport", "SamsaWaiting", "samsa",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SamsaClientTests",
            dependencies: [
                "SamsaTestSupport", "SamsaClient", "SamsaBroker", "SamsaProtocol", "SamsaRecords", "SamsaStorage", "SamsaTool", "samsa",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SamsaToolTests",
            dependencies: [
                "SamsaTestSupport", "SamsaTool", "SamsaRecords", "SamsaStorage", "Samsa", "samsa",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
    ],
    swiftLanguageModes: [.v6]
)
