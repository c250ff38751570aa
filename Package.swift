// swift-tools-version: 6.1
import PackageDescription

/// Settings every Swift target shares: Swift 6 language mode comes from the tools version.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "AtomSkills",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "atom", targets: ["atom"]),
        .executable(name: "atom-gateway", targets: ["atom-gateway"]),
        .executable(name: "atom-echo", targets: ["atom-echo"]),
        .executable(name: "atom-installer", targets: ["atom-installer"]),
        .executable(name: "atom-loader", targets: ["atom-loader"]),
        .executable(name: "atom-workflow", targets: ["atom-workflow"]),
        .executable(name: "atom-marketplace", targets: ["atom-marketplace"]),
        .executable(name: "atom-protogen", targets: ["atom-protogen"]),
        .library(name: "AtomRPC", targets: ["AtomRPC"]),
        .library(name: "AtomAPI", targets: ["AtomAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C behind small system-library and generated-code targets.
        // No pkgConfig: Debian's libzmq.pc adds -isystem flags that SwiftPM prohibits (and warns
        // about); the headers are in /usr/include and scripts/setup checks `pkg-config libzmq`.
        .systemLibrary(
            name: "CZeroMQ",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .systemLibrary(
            name: "CProtobufC",
            pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]
        ),
        // protoc-c output for proto/atom/v1/*.proto (generated, committed).
        .target(name: "CAtomProto", dependencies: ["CProtobufC"]),
        // protoc-c output for google/protobuf/descriptor.proto: lets the generator read
        // `protoc --descriptor_set_out` files with protobuf-c itself.
        .target(name: "CProtoDescriptor", dependencies: ["CProtobufC"]),

        // Swift value types for every message, bridged to the C structs (generated, committed).
        .target(name: "AtomProto", dependencies: ["CAtomProto", "CProtobufC"], swiftSettings: swiftSettings),
        // Latency histograms per operation, budgets, baselines, regression checks.
        .target(
            name: "AtomMetrics",
            dependencies: [.product(name: "Histogram", package: "hdrhistogram-swift")],
            swiftSettings: swiftSettings
        ),
        // Transport and RPC semantics: ZeroMQ wrapper, envelope, client, server, status codes.
        .target(
            name: "AtomRPC",
            dependencies: [
                "CZeroMQ", "AtomProto", "AtomMetrics",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // Typed clients and service protocols for every proto service (generated, committed).
        .target(name: "AtomAPI", dependencies: ["AtomRPC", "AtomProto"], swiftSettings: swiftSettings),
        // The broker: registry, routing, deadlines, fan-out.
        .target(
            name: "AtomGateway",
            dependencies: [
                "AtomRPC", "AtomAPI", "AtomProto", "AtomMetrics",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "FlyingFox", package: "FlyingFox"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // The diagnostic echo service (benchmarks and end-to-end tests call it).
        .target(
            name: "AtomEcho",
            dependencies: ["AtomRPC", "AtomAPI", "AtomProto"],
            swiftSettings: swiftSettings
        ),
        // The skill format the loader, the marketplace and the bundled catalog share: manifest,
        // validation, content hash.
        .target(
            name: "AtomSkillFormat",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The installer: requirement parsing, conflict detection, content-addressed environments.
        .target(
            name: "AtomInstaller",
            dependencies: [
                "AtomRPC", "AtomAPI", "AtomProto", "AtomSkillFormat",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The loader: skill hosts (runtime/), sandbox, hot reload, execution with limits.
        .target(
            name: "AtomLoader",
            dependencies: [
                "AtomRPC", "AtomAPI", "AtomProto", "AtomSkillFormat", "AtomMetrics",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The marketplace: the catalog in SQLite, the ranked in-memory index, the search cache.
        .target(
            name: "AtomMarketplace",
            dependencies: [
                "AtomRPC", "AtomAPI", "AtomProto", "AtomSkillFormat",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The workflow engine: specs (YAML/JSON), validation and plans, the scheduler, the result
        // cache and durable runs; skills execute through the loader service.
        .target(
            name: "AtomWorkflow",
            dependencies: [
                "AtomRPC", "AtomAPI", "AtomProto", "AtomMetrics", "AtomSkillFormat",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `atom` commands as a library.
        .target(
            name: "AtomCLI",
            dependencies: [
                "AtomRPC", "AtomAPI", "AtomProto", "AtomGateway", "AtomEcho", "AtomMetrics", "AtomWorkflow", "AtomSkillFormat",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: swiftSettings
        ),

        // Thin executables.
        .executableTarget(name: "atom", dependencies: ["AtomCLI"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "atom-gateway",
            dependencies: ["AtomGateway", "AtomRPC", "AtomMetrics"],
            path: "services/gateway/Sources",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "atom-echo",
            dependencies: ["AtomEcho", "AtomRPC"],
            path: "services/echo/Sources",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "atom-installer",
            dependencies: ["AtomInstaller", "AtomRPC"],
            path: "services/installer/Sources",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "atom-loader",
            dependencies: ["AtomLoader", "AtomRPC", .product(name: "Logging", package: "swift-log")],
            path: "services/loader/Sources",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "atom-marketplace",
            dependencies: ["AtomMarketplace", "AtomRPC"],
            path: "services/marketplace/Sources",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "atom-workflow",
            dependencies: ["AtomWorkflow", "AtomRPC"],
            path: "services/workflow/Sources",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "atom-protogen",
            dependencies: ["CProtoDescriptor", "CProtobufC"],
            swiftSettings: swiftSettings
        ),

        // Helpers that start real processes on free endpoints and always clean up.
        .target(
            name: "AtomTesting",
            dependencies: ["AtomRPC", "AtomAPI", "AtomProto", "AtomCLI", "AtomGateway", "AtomEcho"],
            path: "Tests/AtomTesting",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtomMetricsTests",
            dependencies: ["AtomMetrics", "AtomTesting", .product(name: "Histogram", package: "hdrhistogram-swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "AtomProtoTests", dependencies: ["AtomProto", "CAtomProto", "AtomTesting"], swiftSettings: swiftSettings),
        .testTarget(
            name: "AtomRPCTests",
            dependencies: ["AtomRPC", "AtomAPI", "AtomProto", "AtomTesting", "AtomGateway", "AtomEcho", "CZeroMQ"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtomInstallerTests",
            dependencies: ["AtomInstaller", "AtomRPC", "AtomAPI", "AtomProto", "AtomTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtomSkillFormatTests",
            dependencies: ["AtomSkillFormat", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtomLoaderTests",
            dependencies: ["AtomLoader", "AtomSkillFormat", "AtomRPC", "AtomAPI", "AtomProto", "AtomMetrics", "AtomTesting",
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtomWorkflowTests",
            dependencies: [
                "AtomWorkflow", "AtomRPC", "AtomAPI", "AtomProto", "AtomTesting", "AtomMetrics",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtomMarketplaceTests",
            dependencies: [
                "AtomMarketplace", "AtomSkillFormat", "AtomRPC", "AtomAPI", "AtomProto", "AtomTesting", "AtomCLI",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "AtomRPC", "AtomAPI", "AtomProto", "AtomTesting", "AtomCLI", "CZeroMQ",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
