// swift-tools-version: 6.2
// The Swift guest compute service (GCS): a Linux guest agent for Hyper-V utility VMs that speaks
// hcsshim's bridge protocol. Layering: Shims (C) -> EventLoop -> Bridge -> Agent -> executables.
import PackageDescription

/// Settings shared by every Swift target: Swift 6 mode and warnings treated as errors.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .treatAllWarnings(as: .error),
]
/// The C targets' counterpart: every warning is an error.
let strictC: [CSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "swift-gcs",
    products: [
        .library(name: "EventLoop", targets: ["EventLoop"]),
        .library(name: "Bridge", targets: ["Bridge"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "Shims",
            path: "Sources/Shims",
            cSettings: strictC,
            linkerSettings: [.linkedLibrary("uring")]
        ),
        .target(
            name: "EventLoop",
            dependencies: [
                "Shims",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: strict
        ),
        .target(name: "CTestSupport", path: "Tests/CTestSupport", cSettings: strictC),
        .target(name: "CBench", path: "Benchmarks/CBench", cSettings: strictC, linkerSettings: [.linkedLibrary("uring")]),
        .target(name: "BenchReport", path: "Benchmarks/BenchReport", swiftSettings: strict),
        .executableTarget(
            name: "RelayBench",
            dependencies: ["EventLoop", "Shims", "CBench", "BenchReport"],
            path: "Benchmarks/RelayBench",
            swiftSettings: strict
        ),
        .testTarget(
            name: "EventLoopTests",
            dependencies: ["EventLoop", "Shims", "CTestSupport"],
            swiftSettings: strict
        ),
        .target(
            name: "Bridge",
            dependencies: [
                "EventLoop",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BridgeTests",
            dependencies: [
                "Bridge",
                "EventLoop",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: [],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        .target(
            name: "Agent",
            dependencies: [
                "Bridge",
                "EventLoop",
                "Shims",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "gcs",
            dependencies: [
                "Agent",
                "EventLoop",
                "Shims",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "HostSupport",
            dependencies: [
                "Bridge",
                "EventLoop",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "gcs-demo",
            dependencies: [
                "HostSupport",
                "Bridge",
                "EventLoop",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "AgentBench",
            dependencies: ["HostSupport", "Bridge", "EventLoop", "Shims", "CBench", "BenchReport",
                           .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/AgentBench",
            swiftSettings: strict
        ),
        .testTarget(
            name: "AgentTests",
            dependencies: ["Agent", "Bridge", "EventLoop", "HostSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "BridgeBench",
            dependencies: [
                "BenchReport",
                "Bridge",
                "EventLoop",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/BridgeBench",
            swiftSettings: strict
        ),
    ]
)
