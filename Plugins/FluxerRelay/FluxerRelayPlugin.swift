public import EthicalGateway
import Foundation
import NIOCore

/// The `fluxer-relay` backend: real-time messaging between services and front-end clients.
///
/// Clients hold a WebSocket at `<mount>/connection/websocket` speaking the Centrifugal client
/// protocol v2 (JSON), so the Centrifugo SDKs connect unchanged; services publish through the
/// HTTP API at `<mount>/api/…`. See `docs/relay-protocol.md`.
///
/// ```json
/// "relay": { "plugin": "fluxer-relay", "config": { "issuers": ["dev"], "namespaces": { "chat": { "historySize": 100 } } } }
/// ```
public enum FluxerRelayPlugin: BackendPlugin {
    public static let id = "fluxer-relay"
    public typealias Configuration = RelayConfiguration

    public static func provision(_ configuration: RelayConfiguration, context: PluginContext) throws -> any Backend {
        try self.provision(configuration, context: context, engine: nil)
    }

    /// Provisions the relay on `engine` instead of the one its config names. SPI for tests
    /// that need an engine that fails (`@_spi(Testing) import FluxerRelayPlugin`).
    @_spi(Testing)
    public static func provision(
        _ configuration: RelayConfiguration,
        context: PluginContext,
        engine configuredEngine: (any RelayEngine)?
    ) throws -> any Backend {
        var issues = configuration.problems().map {
            ConfigIssue(path: "\(context.configPath).\($0.key)", message: $0.message)
        }
        for (offset, issuer) in configuration.issuers.enumerated()
        where !context.issuerNames.contains(issuer) {
            issues.append(
                ConfigIssue(
                    path: "\(context.configPath).issuers[\(offset)]",
                    message: "no issuer \"\(issuer)\" under $.issuers"
                )
            )
        }
        var apiKey: String?
        if let keyFile = configuration.apiKeyFile {
            let url = context.resolvePath(keyFile)
            do {
                let key = try String(contentsOf: url, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                if key.utf8.count < 16 {
                    issues.append(
                        ConfigIssue(
                            path: "\(context.configPath).apiKeyFile",
                            message: "the API key in \(url.path) is shorter than 16 characters"
                        )
                    )
                }
                apiKey = key
            } catch {
                issues.append(
                    ConfigIssue(path: "\(context.configPath).apiKeyFile", message: "cannot read \(url.path): \(error)")
                )
            }
        }
        var engine: (any RelayEngine)? = configuredEngine
        if engine == nil {
            switch configuration.engine.type {
            case .memory: engine = MemoryEngine()
            case .redis:
                do {
                    engine = try RedisEngine.provision(configuration.engine, context: context)
                } catch let error as ConfigValidationError {
                    issues += error.issues
                }
            }
        }
        guard issues.isEmpty, let engine else { throw ConfigValidationError(issues) }

        let file = context.stateDirectory.appendingPathComponent("fluxer-relay")
            .appendingPathComponent("\(context.name)-namespaces.json")
        let namespaces: NamespaceStore
        do {
            namespaces = try NamespaceStore(
                configured: configuration.namespaces,
                file: file,
                shared: engine.sharedNamespaces,
                logger: context.logger
            )
        } catch {
            throw context.error("namespaces", "\(error)")
        }
        let relay = Relay(
            name: context.name,
            configuration: configuration,
            engine: engine,
            namespaces: namespaces,
            eventLoopGroup: context.eventLoopGroup,
            tokenVerifier: context.tokenVerifier,
            apiKey: apiKey,
            clientScript: ByteBuffer(string: ClientScript.source),
            logger: context.logger,
            metrics: RelayMetrics(backend: context.name, factory: context.metrics)
        )
        return RelayBackend(relay: relay)
    }
}
