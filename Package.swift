// swift-tools-version: 6.1
import PackageDescription

/// Settings shared by every target, so the whole package builds under the same rules.
///
/// Release builds skip the runtime exclusivity checks: they cost about 3% of the proxy's CPU
/// (measured with perf, see BENCHMARKS.md); debug builds and tests keep them. This setting
/// reaches only this package's targets; the dependencies' checks (12% of a proxied request's
/// instructions, mostly NIO's) go with `swift build -c release -Xswiftc -enforce-exclusivity=unchecked`,
/// as the Dockerfile and the benchmark scripts build.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

/// A compiled-in gateway plugin: one target under `Plugins/<Name>`, built on the core library and NIO.
func pluginTarget(
    _ name: String,
    path: String,
    extraDependencies: [Target.Dependency] = [],
    exclude: [String] = []
) -> Target {
    .target(
        name: name,
        dependencies: [
            "EthicalGateway",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ] + extraDependencies,
        path: path,
        exclude: exclude,
        swiftSettings: swiftSettings
    )
}

let package = Package(
    name: "ethical-gateway",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ethical-gateway", targets: ["ethical-gateway"]),
        .library(name: "EthicalGateway", targets: ["EthicalGateway"]),
        .library(name: "FluxerRelayPlugin", targets: ["FluxerRelayPlugin"]),
        // Only for the micro benchmarks in Benchmarks/, a package of its own that measures the
        // proxy's header work through `@_spi(Benchmarks)`; products are all another package sees.
        .library(name: "HTTPProxyPlugin", targets: ["HTTPProxyPlugin"]),
        // The HTTP/1.1 codec (request head parser, response decoder) and its differential checks
        // against NIO's llhttp, for the fuzzing package in Fuzz/ (built with -sanitize=fuzzer by
        // scripts/fuzz-http1.sh).
        .library(name: "HTTP1Codec", targets: ["HTTP1Codec"]),
        .library(name: "HTTP1Differential", targets: ["HTTP1Differential"]),
        .library(name: "WebSocketCore", targets: ["WebSocketCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // Spans exported over OTLP/HTTP only: the gRPC trait would add grpc-swift to every build.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/swiftwasm/WasmKit", from: "0.4.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .target(
            name: "HTTP1Codec",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HTTP1Differential",
            dependencies: [
                "HTTP1Codec",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HTTP1CodecTests",
            dependencies: ["HTTP1Codec", "HTTP1Differential", .product(name: "NIOCore", package: "swift-nio")],
            exclude: ["Corpus", "ResponseCorpus"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "EthicalGateway",
            dependencies: [
                "HTTP1Codec",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            swiftSettings: swiftSettings
        ),
        // A small Redis client on SwiftNIO (RESP3 with RESP2 fallback), for the relay's Redis engine.
        .target(
            name: "RESPClient",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // zlib from the system (Debian: zlib1g-dev), for permessage-deflate.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // The one WebSocket layer of the gateway's WebSocket backends (the relay, websocket-echo):
        // handshake, messages from NIO's frames, close handshake, limits, permessage-deflate.
        .target(
            name: "WebSocketCore",
            dependencies: [
                "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        pluginTarget("StaticFilesPlugin", path: "Plugins/StaticFiles"),
        pluginTarget(
            "WebSocketEchoPlugin",
            path: "Plugins/WebSocketEcho",
            extraDependencies: ["WebSocketCore", .product(name: "NIOWebSocket", package: "swift-nio")]
        ),
        pluginTarget("RedirectPlugin", path: "Plugins/Redirect"),
        pluginTarget("RespondPlugin", path: "Plugins/Respond"),
        pluginTarget("HeadersPlugin", path: "Plugins/Headers"),
        // Runtime filters: http-wasm guests run by WasmKit's interpreter.
        pluginTarget(
            "WasmPlugin",
            path: "Plugins/Wasm",
            extraDependencies: [
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        pluginTarget(
            "HTTPProxyPlugin",
            path: "Plugins/HTTPProxy",
            extraDependencies: [
                // The upstream half of a WebSocket a client opened over HTTP/2 (its key and accept).
                "WebSocketCore",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        pluginTarget(
            "FluxerRelayPlugin",
            path: "Plugins/FluxerRelay",
            extraDependencies: [
                "RESPClient",
                "WebSocketCore",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                // The runtime of the Protobuf format's generated messages (Protobuf/client.pb.swift).
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["Resources", "Protobuf/client.proto"]
        ),
        .target(
            name: "EthicalGatewayTesting",
            dependencies: [
                "EthicalGateway",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ethical-gateway",
            dependencies: [
                "EthicalGateway",
                "StaticFilesPlugin",
                "RedirectPlugin",
                "RespondPlugin",
                "HTTPProxyPlugin",
                "FluxerRelayPlugin",
                "WebSocketEchoPlugin",
                "WasmPlugin",
                "HeadersPlugin",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RESPClientTests",
            dependencies: [
                "RESPClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EthicalGatewayTests",
            dependencies: [
                "EthicalGateway",
                "EthicalGatewayTesting",
                "StaticFilesPlugin",
                "RedirectPlugin",
                "RespondPlugin",
                "HTTPProxyPlugin",
                "FluxerRelayPlugin",
                "WebSocketEchoPlugin",
                "WebSocketCore",
                "WasmPlugin",
                "HeadersPlugin",
                "ethical-gateway",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
    ]
)
