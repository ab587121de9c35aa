// swift-tools-version: 6.1
import PackageDescription

/// The relay fan-out load generator: one SwiftNIO program that drives both the Fluxer Relay
/// (Centrifugal JSON protocol) and nats-server (NATS text protocol), each over plain WebSocket,
/// so both servers see identical load. Deliberately independent of the gateway's package.
let package = Package(
    name: "RelayLoad",
    platforms: [.macOS(.v14)],
    products: [.executable(name: "relay-load", targets: ["RelayLoad"])],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .executableTarget(
            name: "RelayLoad",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [
                .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
            ]
        )
    ]
)
