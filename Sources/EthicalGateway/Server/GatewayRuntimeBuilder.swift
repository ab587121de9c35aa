public import Foundation
public import Logging
public import NIOCore
public import NIOPosix

/// Turns a checked configuration into a ``GatewayRuntime``: loads certificates (making the
/// development certificate where none is configured), provisions every backend and filter
/// through the ``PluginRegistry``, and compiles the route table.
public struct GatewayRuntimeBuilder: Sendable {
    public var registry: PluginRegistry
    /// The folder of the configuration file; relative paths resolve against it.
    public var configDirectory: URL
    public var eventLoopGroup: any EventLoopGroup
    public var fileIO: NonBlockingFileIO
    public var logger: Logger
    /// When `false` (for `validate`), HTTPS listeners without certificates are not given a
    /// development certificate, development issuers get no key, and nothing is written to disk.
    public var createDevelopmentCertificates: Bool

    public init(
        registry: PluginRegistry,
        configDirectory: URL,
        eventLoopGroup: any EventLoopGroup,
        fileIO: NonBlockingFileIO = NonBlockingFileIO(threadPool: .singleton),
        logger: Logger,
        createDevelopmentCertificates: Bool = true
    ) {
        self.registry = registry
        self.configDirectory = configDirectory
        self.eventLoopGroup = eventLoopGroup
        self.fileIO = fileIO
        self.logger = logger
        self.createDevelopmentCertificates = createDevelopmentCertificates
    }

    /// The folder for the gateway's own state, resolved against the configuration folder.
    public func stateDirectory(for configuration: GatewayConfiguration) -> URL {
        resolveConfigPath(configuration.stateDirectory, relativeTo: self.configDirectory)
    }

    /// Reads, checks and builds the configuration file at `url`. Throws
    /// ``ConfigValidationError`` with every issue: those of the document and, for the parts that
    /// could be decoded, those of plugins, certificates and routes.
    public func load(fileAt url: URL) throws -> GatewayRuntime {
        try self.load(data: ConfigLoader.read(url))
    }

    /// Checks and builds configuration JSON; see ``load(fileAt:)``.
    public func load(data: Data) throws -> GatewayRuntime {
        let configuration: GatewayConfiguration
        do {
            configuration = try ConfigLoader.load(data: data)
        } catch let error as ConfigValidationError {
            guard let partial = error.partialConfiguration else { throw error }
            var checker = self
            checker.createDevelopmentCertificates = false
            do {
                let runtime = try checker.build(partial)
                Task { await runtime.shutdownBackends() }
            } catch let more as ConfigValidationError {
                throw ConfigValidationError(error.issues + more.issues)
            }
            throw error
        }
        return try self.build(configuration)
    }

    /// Builds the runtime, or throws ``ConfigValidationError`` with every issue found.
    public func build(_ configuration: GatewayConfiguration) throws -> GatewayRuntime {
        var issues: [ConfigIssue] = []
        let stateDirectory = self.stateDirectory(for: configuration)

        var certificateStores: [Int: CertificateStore] = [:]
        for listener in configuration.listeners {
            guard let tls = listener.tls else { continue }
            do {
                var sources = tls.certificates.enumerated().map { offset, certificate in
                    CertificateStore.Source(
                        certificateFile: resolveConfigPath(
                            certificate.certificateFile,
                            relativeTo: self.configDirectory
                        ),
                        keyFile: resolveConfigPath(certificate.keyFile, relativeTo: self.configDirectory),
                        serverNames: certificate.serverNames,
                        path: "\(listener.jsonPath).tls.certificates[\(offset)]"
                    )
                }
                if sources.isEmpty {
                    guard self.createDevelopmentCertificates else { continue }
                    let files = try DevelopmentCertificate.ensure(in: stateDirectory, logger: self.logger)
                    sources = [
                        CertificateStore.Source(
                            certificateFile: files.certificateFile,
                            keyFile: files.keyFile,
                            path: "\(listener.jsonPath).tls"
                        )
                    ]
                }
                let store = try CertificateStore(listenerName: listener.name, sources: sources)
                if tls.certificates.isEmpty, let certificate = store.certificates.first {
                    self.logger.notice(
                        "using the development certificate; clients must trust it explicitly",
                        metadata: ["listener": "\(listener.name)", "sha256-fingerprint": "\(certificate.fingerprint)"]
                    )
                }
                certificateStores[listener.index] = store
            } catch let error as ConfigValidationError {
                issues += error.issues
            } catch let error as ConfigIssueError {
                issues.append(error.issue)
            }
        }

        var authenticator: Authenticator?
        if !configuration.issuers.isEmpty {
            do {
                authenticator = try Authenticator(
                    issuers: configuration.issuers,
                    configDirectory: self.configDirectory,
                    stateDirectory: stateDirectory,
                    createState: self.createDevelopmentCertificates,
                    eventLoopGroup: self.eventLoopGroup,
                    logger: self.logger
                )
            } catch {
                issues += Self.issues(from: error, path: "$.issuers", name: "issuers")
            }
        }

        let tokenVerifier = authenticator.map(TokenVerifier.init(authenticator:))

        var backends: [String: any Backend] = [:]
        for (name, declaration) in configuration.backends.sorted(by: { $0.key < $1.key }) {
            do {
                backends[name] = try self.registry.makeBackend(
                    declaration,
                    pluginPath: "$.backends.\(name).plugin",
                    context: self.context(
                        name: name,
                        declaration: declaration,
                        stateDirectory: stateDirectory,
                        tokenVerifier: tokenVerifier
                    )
                )
            } catch {
                issues += Self.issues(from: error, path: declaration.configPath, name: "backend \(name)")
            }
        }
        var filters: [String: any Filter] = [:]
        for (name, declaration) in configuration.filters.sorted(by: { $0.key < $1.key }) {
            do {
                filters[name] = try self.registry.makeFilter(
                    declaration,
                    pluginPath: "$.filters.\(name).plugin",
                    context: self.context(
                        name: name,
                        declaration: declaration,
                        stateDirectory: stateDirectory,
                        tokenVerifier: tokenVerifier
                    )
                )
            } catch {
                issues += Self.issues(from: error, path: declaration.configPath, name: "filter \(name)")
            }
        }

        var entries: [RouteEntry<CompiledRoute>] = []
        for route in configuration.routes {
            guard let backend = backends[route.backend] else { continue }
            var routeFilters = route.filters.compactMap { filters[$0] }
            guard routeFilters.count == route.filters.count else { continue }
            if let auth = route.auth {
                // The token check runs before the route's own filters.
                guard let authenticator, auth.issuers.allSatisfy({ authenticator.issuers[$0] != nil }) else { continue }
                routeFilters.insert(AuthFilter(policy: RoutePolicy(auth), authenticator: authenticator), at: 0)
            }
            let compiled = CompiledRoute(
                name: route.name,
                backend: backend,
                filters: routeFilters,
                rewrite: PathRewrite(stripPrefix: route.stripPrefix, rewritePrefix: route.rewritePrefix),
                maxBodyBytes: route.maxBodyBytes ?? configuration.limits.maxBodyBytes,
                escapedSlashes: route.escapedSlashes
            )
            entries.append(
                RouteEntry(
                    name: route.name,
                    jsonPath: route.jsonPath,
                    hosts: (route.match.hosts ?? []).compactMap(HostPattern.init),
                    path: PathCondition(path: route.match.path, pathPrefix: route.match.pathPrefix),
                    methods: route.match.methods.map(Set.init),
                    headers: (route.match.headers ?? [:]).sorted { $0.key < $1.key }.map {
                        HeaderCondition(name: $0.key, value: $0.value)
                    },
                    target: compiled
                )
            )
        }
        var routes: RouteTable<CompiledRoute>?
        do {
            routes = try RouteTable.build(entries)
        } catch let error as ConfigValidationError {
            issues += error.issues
        }

        guard issues.isEmpty, let routes else {
            let built = backends
            Task { for backend in built.values { await backend.shutdown() } }
            throw ConfigValidationError(issues)
        }
        return GatewayRuntime(
            configuration: configuration,
            routes: routes,
            backends: backends,
            certificateStores: certificateStores
        )
    }

    private func context(
        name: String,
        declaration: PluginDeclaration,
        stateDirectory: URL,
        tokenVerifier: TokenVerifier?
    ) -> PluginContext {
        var logger = self.logger
        logger[metadataKey: "plugin"] = "\(declaration.plugin)"
        logger[metadataKey: "name"] = "\(name)"
        return PluginContext(
            name: name,
            configPath: declaration.configPath,
            configDirectory: self.configDirectory,
            stateDirectory: stateDirectory,
            eventLoopGroup: self.eventLoopGroup,
            fileIO: self.fileIO,
            logger: logger,
            tokenVerifier: tokenVerifier
        )
    }

    /// Plugin errors as issues; anything that is not a config error still names the plugin.
    private static func issues(from error: any Error, path: String, name: String) -> [ConfigIssue] {
        switch error {
        case let error as ConfigValidationError: return error.issues
        case let error as ConfigIssueError: return [error.issue]
        default: return [ConfigIssue(path: path, message: "provisioning \(name) failed: \(error)")]
        }
    }
}
