import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Logging
import NIOPosix
import Testing

@testable import ethical_gateway

/// The plugin list of the real binary, so tests exercise exactly what users run.
var gatewayRegistry: PluginRegistry { CompiledPlugins.registry }

/// The repository's root folder (for `config/` and scripts).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Loads and builds a configuration as `validate` does, returning every issue (empty when valid).
func configIssues(
    _ json: String,
    files: [String: String] = [:],
    registry: PluginRegistry = gatewayRegistry
) async throws -> [ConfigIssue] {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    for (path, contents) in files { try directory.write(contents, to: path) }
    do {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let runtime = try await GatewayRuntimeBuilder(
            registry: registry,
            configDirectory: directory.url,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger,
            createDevelopmentCertificates: false
        ).load(data: Data(json.utf8))
        await runtime.shutdownBackends()
        return []
    } catch let error as ConfigValidationError {
        return error.issues
    }
}

/// A minimal valid config with one plain listener on an ephemeral port, plus `extra` top-level members.
func plainConfig(routes: String, backends: String, extra: String = "") -> String {
    """
    { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
      "routes": \(routes),
      "backends": \(backends)\(extra.isEmpty ? "" : ",\n" + extra) }
    """
}
