// swift-tools-version: 6.1
import PackageDescription

// The libFuzzer targets for the HTTP/1.1 request head parser and response decoder: a package of its own, so the gateway never
// builds with the fuzzer's instrumentation. Build and run it with scripts/fuzz-http1.sh; it
// needs `-sanitize=fuzzer` and `-parse-as-library` (libFuzzer brings `main`).
let package = Package(
    name: "fuzz",
    dependencies: [.package(name: "ethical-gateway", path: "..")],
    targets: [
        .executableTarget(
            name: "FuzzHTTP1RequestHead",
            dependencies: [.product(name: "HTTP1Differential", package: "ethical-gateway")]
        ),
        .executableTarget(
            name: "FuzzHTTP1Response",
            dependencies: [.product(name: "HTTP1Differential", package: "ethical-gateway")]
        ),
    ]
)
