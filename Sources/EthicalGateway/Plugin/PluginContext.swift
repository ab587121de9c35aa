public import CoreMetrics
public import Foundation
public import Logging
public import NIOCore
public import NIOPosix

/// What a plugin gets while it is provisioned from its configuration.
public struct PluginContext: Sendable {
    /// The backend's or filter's name in the configuration.
    public let name: String
    /// Where the plugin's `config` object sits, e.g. `$.backends.site.config`; use it in errors.
    public let configPath: String
    /// The folder of the configuration file; relative paths in plugin configs resolve against it.
    public let configDirectory: URL
    /// The gateway's state folder, for plugins that persist data.
    public let stateDirectory: URL
    /// The gateway's event loops.
    public let eventLoopGroup: any EventLoopGroup
    /// Non-blocking file access on the gateway's I/O thread pool.
    public let fileIO: NonBlockingFileIO
    /// A logger labelled with the plugin.
    public let logger: Logger
    /// Verifies tokens that arrive inside a plugin's own protocol against the configured
    /// `issuers`; `nil` when the configuration declares none. After a reload it verifies with
    /// the reloaded issuers, so a plugin keeps it for its lifetime.
    public let tokenVerifier: TokenVerifier?
    /// The names under `$.issuers` of the configuration being provisioned; check references to
    /// issuers against these (the verifier still serves the configuration in service).
    public let issuerNames: Set<String>
    /// Creates the plugin's metrics (swift-metrics), exported by the admin API's `/metrics`.
    /// Name them `gateway_<plugin>_...`, with bounded label values.
    public let metrics: any MetricsFactory
    /// The gateway's metrics, for what the swift-metrics API cannot record without a lock
    /// (``loopHistogram(_:help:labels:)``); `nil` in contexts made outside a gateway.
    let gatewayMetrics: GatewayMetrics?

    public init(
        name: String,
        configPath: String,
        configDirectory: URL,
        stateDirectory: URL,
        eventLoopGroup: any EventLoopGroup,
        fileIO: NonBlockingFileIO,
        logger: Logger,
        tokenVerifier: TokenVerifier? = nil,
        issuerNames: Set<String> = [],
        metrics: any MetricsFactory = NOOPMetricsHandler.instance,
        gatewayMetrics: GatewayMetrics? = nil
    ) {
        self.name = name
        self.configPath = configPath
        self.configDirectory = configDirectory
        self.stateDirectory = stateDirectory
        self.eventLoopGroup = eventLoopGroup
        self.fileIO = fileIO
        self.logger = logger
        self.tokenVerifier = tokenVerifier
        self.issuerNames = issuerNames
        self.metrics = metrics
        self.gatewayMetrics = gatewayMetrics
    }

    /// A histogram recorded per event loop without a lock, exported by `/metrics` (see
    /// ``LoopHistogram``): for a duration observed on every request. Seconds, 1 ms to 10 s.
    public func loopHistogram(_ name: String, help: String, labels: [(String, String)]) -> LoopHistogram {
        (self.gatewayMetrics ?? GatewayMetrics()).loopHistogram(
            name,
            help: help,
            labels: labels,
            eventLoopGroup: self.eventLoopGroup
        )
    }

    /// Resolves a path from the configuration against the configuration's folder.
    public func resolvePath(_ path: String) -> URL {
        resolveConfigPath(path, relativeTo: self.configDirectory)
    }

    /// An error about a key of the plugin's configuration, e.g. `context.error("root", "folder does not exist")`.
    public func error(_ key: String?, _ message: String) -> ConfigIssueError {
        let path = key.map { "\(self.configPath).\($0)" } ?? self.configPath
        return ConfigIssueError(ConfigIssue(path: path, message: message))
    }
}

/// Resolves `path` against `directory` unless it is absolute; `~` is not expanded.
func resolveConfigPath(_ path: String, relativeTo directory: URL) -> URL {
    if path.hasPrefix("/") {
        return URL(fileURLWithPath: path).standardizedFileURL
    }
    return directory.appendingPathComponent(path).standardizedFileURL
}
