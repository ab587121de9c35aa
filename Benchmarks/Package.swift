// swift-tools-version: 6.1
import PackageDescription

/// Micro benchmarks of the gateway's hot paths (ordo-one/benchmark), a package of its own so the
/// gateway itself never depends on the benchmark tooling. Run with `swift package benchmark` here.
///
/// The gateway's types are mostly internal; the benchmarks reach what they measure through
/// `@_spi(Benchmarks)` declarations in the root package.
func benchmarkTarget(_ name: String, dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: [.product(name: "Benchmark", package: "benchmark")] + dependencies,
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}

let package = Package(
    name: "ethical-gateway-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "ethical-gateway", path: ".."),
        // The MallocInterposer trait alone: the default RuntimeInterposer trait needs a package the mirror lacks.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        benchmarkTarget(
            "Routing",
            dependencies: [
                .product(name: "EthicalGateway", package: "ethical-gateway"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        benchmarkTarget(
            "JWTVerification",
            dependencies: [
                .product(name: "EthicalGateway", package: "ethical-gateway"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        benchmarkTarget(
            "RelayFanOut",
            dependencies: [.product(name: "FluxerRelayPlugin", package: "ethical-gateway")]
        ),
        benchmarkTarget(
            "ProxyHeaders",
            dependencies: [
                .product(name: "EthicalGateway", package: "ethical-gateway"),
                .product(name: "HTTPProxyPlugin", package: "ethical-gateway"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ]
)
