import ArgumentParser
import EthicalGateway
import FluxerRelayPlugin
import Foundation
import HTTPProxyPlugin
import HeadersPlugin
import Logging
import NIOCore
import NIOPosix
import RedirectPlugin
import RespondPlugin
import ServiceLifecycle
import StaticFilesPlugin
import WasmPlugin
import WebSocketEchoPlugin

/// The one list of plugins compiled into this binary.
enum CompiledPlugins {
    static var registry: PluginRegistry {
        var registry = PluginRegistry()
        registry.register(StaticFilesPlugin.self)
        registry.register(RedirectPlugin.self)
        registry.register(RespondPlugin.self)
        registry.register(FluxerRelayPlugin.self)
        registry.register(HTTPProxyPlugin.self)
        registry.register(WebSocketEchoPlugin.self)
        registry.register(HeadersPlugin.self)
        registry.register(WasmPlugin.self)
        return registry
    }
}

@main
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ethical-gateway",
        abstract: "A secure entry point for a cluster: TLS termination, routing and plugins from one JSON config.",
        version: GatewayVersion.current,
        subcommands: [RunCommand.self, ValidateCommand.self, DevTokenCommand.self, VersionCommand.self],
        defaultSubcommand: RunCommand.self
    )
}

/// Options shared by the subcommands that read a configuration.
struct ConfigOptions: ParsableArguments {
    @Option(
        name: .shortAndLong,
        help: ArgumentHelp(
            "The configuration file.",
            discussion: "Default: $\(ConfigLoader.configPathVariable), else \(ConfigLoader.defaultConfigPath)."
        )
    )
    var config: String?

    @Option(
        help:
            "Log level (trace, debug, info, notice, warning, error, critical). Default: $ETHICAL_GATEWAY_LOG_LEVEL, else the config's logLevel, else info."
    )
    var logLevel: String?

    var configURL: URL {
        let path =
            self.config ?? ProcessInfo.processInfo.environment[ConfigLoader.configPathVariable]
            ?? ConfigLoader.defaultConfigPath
        return URL(fileURLWithPath: path).standardizedFileURL
    }

    func makeLogger(configured: LogLevelSetting?, format: LogFormatSetting = .text) throws -> Logger {
        let name =
            self.logLevel ?? ProcessInfo.processInfo.environment["ETHICAL_GATEWAY_LOG_LEVEL"] ?? configured?.rawValue
            ?? "info"
        guard let level = Logger.Level(rawValue: name.lowercased()) else {
            throw ValidationError(
                "unknown log level \"\(name)\"; expected trace, debug, info, notice, warning, error or critical"
            )
        }
        var logger = Logger(label: "ethical-gateway") { label -> any LogHandler in
            format == .json ? JSONLogHandler(label: label) : TextLogHandler(label: label)
        }
        logger.logLevel = level
        return logger
    }
}

/// Prints configuration errors, one per line, and exits 1.
func failWithConfigErrors(_ error: ConfigValidationError, configURL: URL) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(configURL.path): \(error)\n".utf8))
    return ExitCode(1)
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the gateway (the default).")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let configURL = self.options.configURL
        // Read once for the log level; the builder reads it again and reports every issue.
        let configured = try? ConfigLoader.load(fileAt: configURL)
        let logger = try self.options.makeLogger(
            configured: configured?.logLevel,
            format: configured?.logFormat ?? .text
        )
        let eventLoopGroup = MultiThreadedEventLoopGroup.singleton
        let metrics = GatewayMetrics()
        let builder = GatewayRuntimeBuilder(
            registry: CompiledPlugins.registry,
            configDirectory: configURL.deletingLastPathComponent(),
            eventLoopGroup: eventLoopGroup,
            logger: logger,
            metrics: metrics
        )
        let runtime: GatewayRuntime
        do {
            runtime = try await builder.load(fileAt: configURL)
        } catch let error as ConfigValidationError {
            throw failWithConfigErrors(error, configURL: configURL)
        }
        logger.notice(
            "starting",
            metadata: [
                "version": "\(GatewayVersion.current)", "config": "\(configURL.path)",
                "config-version": "\(runtime.source.shortVersion)",
            ]
        )
        let server = GatewayServer(runtime: runtime, eventLoopGroup: eventLoopGroup, logger: logger, metrics: metrics)
        let controller = ConfigController(configURL: configURL, builder: builder, server: server, logger: logger)
        var serviceList: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: server, successTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: ConfigReloadService(controller: controller)),
            .init(service: ConfigWatchService(controller: controller, server: server)),
            .init(service: MemoryReclaimer(logger: logger, counts: { server.takeConnectionPeak() })),
        ]
        if let admin = runtime.configuration.admin {
            let adminServer = AdminServer(
                api: AdminAPI(controller: controller, server: server),
                configuration: admin,
                eventLoopGroup: eventLoopGroup,
                logger: logger
            )
            serviceList.append(.init(service: adminServer))
        }
        let services = ServiceGroup(
            configuration: .init(
                services: serviceList,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await services.run()
        } catch let error as ListenerStartError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a configuration file and print every error with its JSON path; exit 1 if it has any."
    )

    @Argument(help: "The configuration file to check.")
    var path: String

    func run() async throws {
        let configURL = URL(fileURLWithPath: self.path).standardizedFileURL
        var logger = Logger(label: "ethical-gateway") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .error
        do {
            let builder = GatewayRuntimeBuilder(
                registry: CompiledPlugins.registry,
                configDirectory: configURL.deletingLastPathComponent(),
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                logger: logger,
                createDevelopmentCertificates: false
            )
            let runtime = try await builder.load(fileAt: configURL)
            await runtime.shutdownBackends()
            let configuration = runtime.configuration
            print(
                "\(configURL.path): OK (\(configuration.listeners.count) listeners, \(configuration.routes.count) routes, "
                    + "\(configuration.backends.count) backends, \(configuration.filters.count) filters)"
            )
        } catch let error as ConfigValidationError {
            throw failWithConfigErrors(error, configURL: configURL)
        }
    }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

    func run() {
        print("ethical-gateway \(GatewayVersion.current)")
    }
}

struct DevTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-token",
        abstract: "Print a token from the configuration's development issuer (\"development\": true).",
        discussion: """
            The issuer's key is made on first use and kept in the state folder, so a running gateway \
            with the same configuration accepts the token. Example:
              ethical-gateway dev-token --sub alice --scope "relay:publish relay:subscribe" --ttl 1h
            """
    )

    @Option(name: .shortAndLong, help: "The configuration file (default as for run).")
    var config: String?

    @Option(help: "The development issuer's name under \"issuers\"; needed when there are several.")
    var issuer: String?

    @Option(help: "The subject (\"sub\").")
    var sub = "developer"

    @Option(help: "Space-delimited scopes (\"scope\").")
    var scope: String?

    @Option(help: "Lifetime: seconds, or a number with s, m, h or d (e.g. 30m, 1h).")
    var ttl = "1h"

    @Option(
        name: .customLong("claim"),
        help: "An extra claim NAME=VALUE (VALUE is JSON if it parses, else a string); repeatable."
    )
    var claims: [String] = []

    func run() async throws {
        guard let lifetime = Self.seconds(self.ttl), lifetime > 0 else {
            throw ValidationError(
                "--ttl: expected seconds or a number with s, m, h or d (e.g. 1h), found \"\(self.ttl)\""
            )
        }
        var extra: [String: JSONValue] = [:]
        for claim in self.claims {
            guard let equals = claim.firstIndex(of: "="), equals != claim.startIndex else {
                throw ValidationError("--claim: expected NAME=VALUE, found \"\(claim)\"")
            }
            let raw = String(claim[claim.index(after: equals)...])
            extra[String(claim[..<equals])] =
                (try? JSONDecoder().decode(JSONValue.self, from: Data(raw.utf8))) ?? .string(raw)
        }
        let path =
            self.config ?? ProcessInfo.processInfo.environment[ConfigLoader.configPathVariable]
            ?? ConfigLoader.defaultConfigPath
        let configURL = URL(fileURLWithPath: path).standardizedFileURL
        let configuration: GatewayConfiguration
        do {
            configuration = try ConfigLoader.load(fileAt: configURL)
        } catch let error as ConfigValidationError {
            throw failWithConfigErrors(error, configURL: configURL)
        }
        do {
            let token = try await DevelopmentIssuer.mint(
                configuration: configuration,
                configDirectory: configURL.deletingLastPathComponent(),
                issuerName: self.issuer,
                subject: self.sub,
                scope: self.scope,
                lifetimeSeconds: lifetime,
                claims: extra
            )
            print(token)
        } catch let error as DevelopmentTokenError {
            FileHandle.standardError.write(Data("error: \(configURL.path): \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// `90`, `90s`, `30m`, `1h`, `2d` as seconds.
    static func seconds(_ text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        if let last = text.last, let unit = units[last] {
            return Double(text.dropLast()).map { $0 * unit }
        }
        return Double(text)
    }
}
