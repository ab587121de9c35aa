public import EthicalGateway
public import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A whole gateway running in the test process on ephemeral loopback ports, the way users run
/// it: a real config file on disk, real listeners, real TLS. Modelled on Hummingbird's
/// `app.test(.live)`.
///
/// ```swift
/// try await LiveGateway.with(config: json, registry: registry) { gateway in
///     let response = try await Curl.request("https://127.0.0.1:\(gateway.port("https"))/healthz")
/// }
/// ```
public final class LiveGateway: Sendable {
    /// The folder holding the config file and any files the test put beside it.
    public let directory: TemporaryDirectory
    public let server: GatewayServer
    /// Applies configuration changes, as SIGHUP and the admin API do.
    public let controller: ConfigController
    /// Bound port by listener name, as started (``currentPort(_:)`` follows reloads).
    public let ports: [String: Int]
    /// The admin API's port, when the config has `"admin"`.
    public let adminPort: Int?
    private let serviceGroup: ServiceGroup
    private let running: Task<Void, any Error>

    /// The bound port of a listener.
    public func port(_ listener: String) -> Int {
        guard let port = self.ports[listener] else { preconditionFailure("no listener named \(listener)") }
        return port
    }

    /// The bound port of a listener in the configuration in service now.
    public func currentPort(_ listener: String) -> Int? {
        self.server.listenerAddresses()[listener]?.port
    }

    private init(
        directory: TemporaryDirectory,
        server: GatewayServer,
        controller: ConfigController,
        ports: [String: Int],
        adminPort: Int?,
        serviceGroup: ServiceGroup,
        running: Task<Void, any Error>
    ) {
        self.directory = directory
        self.server = server
        self.controller = controller
        self.ports = ports
        self.adminPort = adminPort
        self.serviceGroup = serviceGroup
        self.running = running
    }

    /// Writes `config` (and `files`, relative to the config) into a new folder, starts the
    /// gateway on it, runs `body`, and shuts the gateway down again whatever happens.
    public static func with<Result: Sendable>(
        config: String,
        files: [String: String] = [:],
        registry: PluginRegistry,
        prepare: (TemporaryDirectory) throws -> Void = { _ in },
        _ body: (LiveGateway) async throws -> Result
    ) async throws -> Result {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for (path, contents) in files { try directory.write(contents, to: path) }
        try prepare(directory)
        let configFile = try directory.write(config, to: "gateway.json")
        return try await LiveGatewaySlots.holding {
            let gateway = try await Self.start(configFile: configFile, directory: directory, registry: registry)
            do {
                let result = try await body(gateway)
                try await gateway.shutdown()
                return result
            } catch {
                try? await gateway.shutdown()
                throw error
            }
        }
    }

    /// Starts a gateway on an existing config file.
    public static func start(
        configFile: URL,
        directory: TemporaryDirectory,
        registry: PluginRegistry
    ) async throws -> LiveGateway {
        var logger = Logger(label: "live-gateway") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel =
            ProcessInfo.processInfo.environment["GATEWAY_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) }
            ?? .warning
        let metrics = GatewayMetrics()
        let builder = GatewayRuntimeBuilder(
            registry: registry,
            configDirectory: configFile.deletingLastPathComponent(),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger,
            metrics: metrics
        )
        let runtime = try await builder.load(fileAt: configFile)
        let server = GatewayServer(
            runtime: runtime,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger,
            metrics: metrics
        )
        let controller = ConfigController(configURL: configFile, builder: builder, server: server, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: server, successTerminationBehavior: .gracefullyShutdownGroup)
        ]
        var adminServer: AdminServer?
        if let admin = runtime.configuration.admin {
            let service = AdminServer(
                api: AdminAPI(controller: controller, server: server),
                configuration: admin,
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                logger: logger
            )
            adminServer = service
            services.append(.init(service: service))
        }
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        let running = Task { try await group.run() }
        let addresses: [String: SocketAddress]
        let adminAddress: SocketAddress?
        do {
            addresses = try await server.waitUntilListening()
            adminAddress = try await adminServer?.waitUntilListening()
        } catch {
            running.cancel()
            _ = try? await running.value
            throw error
        }
        return LiveGateway(
            directory: directory,
            server: server,
            controller: controller,
            ports: addresses.compactMapValues(\.port),
            adminPort: adminAddress?.port,
            serviceGroup: group,
            running: running
        )
    }

    /// Starts a graceful shutdown (what SIGTERM does) without waiting for it.
    public func beginShutdown() async {
        await self.serviceGroup.triggerGracefulShutdown()
    }

    /// Shuts down gracefully and waits until every listener and connection is closed.
    public func shutdown() async throws {
        await self.serviceGroup.triggerGracefulShutdown()
        try await self.running.value
    }
}
