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
    /// The gateway's metrics; issuers count refusals in it, plugins record through its factory.
    public var metrics: GatewayMetrics

    public init(
        registry: PluginRegistry,
        configDirectory: URL,
        eventLoopGroup: any EventLoopGroup,
        fileIO: NonBlockingFileIO = NonBlockingFileIO(threadPool: .singleton),
        logger: Logger,
        createDevelopmentCertificates: Bool = true,
        metrics: GatewayMetrics = GatewayMetrics()
    ) {
        self.registry = registry
        self.configDirectory = configDirectory
        self.eventLoopGroup = eventLoopGroup
        self.fileIO = fileIO
        self.logger = logger
        self.createDevelopmentCertificates = createDevelopmentCertificates
        self.metrics = metrics
    }

    /// The folder for the gateway's own state, resolved against the configuration folder.
    public func stateDirectory(for configuration: GatewayConfiguration) -> URL {
        resolveConfigPath(configuration.stateDirectory, relativeTo: self.configDirectory)
    }

    /// Reads, checks and builds the configuration file at `url`. Throws
    /// ``ConfigValidationError`` with every issue: those of the document and, for the parts that
    /// could be decoded, those of plugins, certificates and routes. Nothing is started: the
    /// server starts the runtime when it serves it.
    ///
    /// - Parameter previous: the runtime in service, when reloading: backends and filters whose
    ///   declarations did not change are carried over as the same instances.
    public func load(fileAt url: URL, previous: GatewayRuntime? = nil) async throws -> GatewayRuntime {
        try await self.load(data: ConfigLoader.read(url), previous: previous)
    }

    /// Checks and builds configuration JSON; see ``load(fileAt:previous:)``.
    public func load(data: Data, previous: GatewayRuntime? = nil) async throws -> GatewayRuntime {
        let source = try ConfigSource(data: data)
        let configuration: GatewayConfiguration
        do {
            configuration = try ConfigLoader.load(document: source.document)
        } catch let error as ConfigValidationError {
            guard let partial = error.partialConfiguration else { throw error }
            var checker = self
            checker.createDevelopmentCertificates = false
            do {
                let runtime = try await checker.build(partial, source: source, previous: previous)
                await runtime.shutdownNew()
            } catch let more as ConfigValidationError {
                throw ConfigValidationError(error.issues + more.issues)
            }
            throw error
        }
        return try await self.build(configuration, source: source, previous: previous)
    }

    /// Builds the runtime, or throws ``ConfigValidationError`` with every issue found; whatever
    /// was provisioned for a configuration that fails is shut down before this returns.
    public func build(
        _ configuration: GatewayConfiguration,
        source: ConfigSource,
        previous: GatewayRuntime? = nil
    ) async throws -> GatewayRuntime {
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
                if tls.certificates.isEmpty, previous == nil, let certificate = store.certificates.first {
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

        // What each declaration names on disk: part of whether a reload may carry it over.
        var fingerprints: [String: [String: String]] = [
            "issuers": ReferencedFiles.fingerprint(of: source["issuers"], configDirectory: self.configDirectory)
        ]
        for name in configuration.backends.keys {
            fingerprints["backends.\(name)"] = ReferencedFiles.fingerprint(
                of: source.member(name, of: "backends"),
                configDirectory: self.configDirectory
            )
        }
        for name in configuration.filters.keys {
            fingerprints["filters.\(name)"] = ReferencedFiles.fingerprint(
                of: source.member(name, of: "filters"),
                configDirectory: self.configDirectory
            )
        }
        func unchanged(_ key: String, _ json: (ConfigSource) -> JSONValue?) -> Bool {
            guard let previous else { return false }
            return json(previous.source) == json(source) && previous.fingerprints[key] == fingerprints[key]
        }

        var authenticator: Authenticator?
        if let previous, unchanged("issuers", { $0["issuers"] }),
            previous.authenticator != nil || configuration.issuers.isEmpty
        {
            // Unchanged issuers keep their key sets and verified-token caches.
            authenticator = previous.authenticator
        } else if !configuration.issuers.isEmpty {
            do {
                authenticator = try Authenticator(
                    issuers: configuration.issuers,
                    configDirectory: self.configDirectory,
                    stateDirectory: stateDirectory,
                    createState: self.createDevelopmentCertificates,
                    eventLoopGroup: self.eventLoopGroup,
                    logger: self.logger,
                    metrics: self.metrics
                )
            } catch {
                issues += Self.issues(from: error, path: "$.issuers", name: "issuers")
            }
        }
        var adminAccess: AdminAccess?
        if let admin = configuration.admin {
            do {
                adminAccess = try AdminAccess.load(
                    admin,
                    configDirectory: self.configDirectory,
                    stateDirectory: stateDirectory,
                    create: self.createDevelopmentCertificates
                )
            } catch let error as ConfigIssueError {
                issues.append(error.issue)
            }
        }
        // An unchanged access log keeps its writer (and its open file).
        var accessLog: AccessLogWriter?
        var accessLogCarried = false
        if let settings = configuration.accessLog {
            if let previous, let writer = previous.accessLog, writer.configuration == settings,
                previous.source["accessLog"] == source["accessLog"]
            {
                accessLog = writer
                accessLogCarried = true
            } else {
                accessLog = AccessLogWriter(
                    settings,
                    configDirectory: self.configDirectory,
                    eventLoopGroup: self.eventLoopGroup
                )
            }
        }
        // An unchanged `tracing` keeps its tracer (and the spans queued in it).
        var tracer: RequestTracer?
        var tracerCarried = false
        if let settings = configuration.tracing {
            if let previous, let running = previous.tracer, running.configuration == settings {
                tracer = running
                tracerCarried = true
            } else {
                tracer = RequestTracer(
                    settings,
                    logger: self.logger,
                    flushSeconds: configuration.shutdownGracePeriodSeconds
                )
            }
        }
        // One verifier for the gateway's life: carried-over plugins keep theirs.
        let tokenVerifier = previous?.tokenVerifier ?? TokenVerifier(authenticator: authenticator)
        let pluginVerifier = configuration.issuers.isEmpty ? nil : tokenVerifier
        let issuerNames = Set(configuration.issuers.keys)

        // Every declaration is provisioned and validated, also the unchanged ones (provisioning
        // has no side effects), so a carried-over plugin is checked against the new
        // configuration; the fresh instance of an unchanged one is then dropped for the old.
        var provisioned: [String: any Backend] = [:]
        var backends: [String: any Backend] = [:]
        var carriedBackends: Set<String> = []
        for (name, declaration) in configuration.backends.sorted(by: { $0.key < $1.key }) {
            do {
                let backend = try self.registry.makeBackend(
                    declaration,
                    pluginPath: "$.backends.\(name).plugin",
                    context: self.context(
                        name: name,
                        declaration: declaration,
                        stateDirectory: stateDirectory,
                        tokenVerifier: pluginVerifier,
                        issuerNames: issuerNames
                    )
                )
                provisioned[name] = backend
                try backend.validate()
                if let previous, let old = previous.backends[name],
                    unchanged("backends.\(name)", { $0.member(name, of: "backends") })
                {
                    backends[name] = old
                    carriedBackends.insert(name)
                } else {
                    backends[name] = backend
                }
            } catch {
                issues += Self.issues(from: error, path: declaration.configPath, name: "backend \(name)")
            }
        }
        var provisionedFilters: [String: any Filter] = [:]
        var filters: [String: any Filter] = [:]
        var carriedFilters: Set<String> = []
        for (name, declaration) in configuration.filters.sorted(by: { $0.key < $1.key }) {
            do {
                let filter = try self.registry.makeFilter(
                    declaration,
                    pluginPath: "$.filters.\(name).plugin",
                    context: self.context(
                        name: name,
                        declaration: declaration,
                        stateDirectory: stateDirectory,
                        tokenVerifier: pluginVerifier,
                        issuerNames: issuerNames
                    )
                )
                provisionedFilters[name] = filter
                if let previous, let old = previous.filters[name],
                    unchanged("filters.\(name)", { $0.member(name, of: "filters") })
                {
                    filters[name] = old
                    carriedFilters.insert(name)
                } else {
                    filters[name] = filter
                }
            } catch {
                issues += Self.issues(from: error, path: declaration.configPath, name: "filter \(name)")
            }
        }
        // Fresh instances standing in for carried-over ones were never started; release them.
        for (name, backend) in provisioned where carriedBackends.contains(name) { await backend.shutdown() }
        for (name, filter) in provisionedFilters where carriedFilters.contains(name) { await filter.shutdown() }

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
                escapedSlashes: route.escapedSlashes,
                backendName: route.backend,
                accessLog: route.accessLog
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
            for (name, backend) in provisioned where !carriedBackends.contains(name) { await backend.shutdown() }
            for (name, filter) in provisionedFilters where !carriedFilters.contains(name) { await filter.shutdown() }
            throw ConfigValidationError(issues)
        }
        return GatewayRuntime(
            configuration: configuration,
            source: source,
            routes: routes,
            backends: backends,
            filters: filters,
            authenticator: authenticator,
            tokenVerifier: tokenVerifier,
            adminAccess: adminAccess,
            accessLog: accessLog,
            accessLogCarried: accessLogCarried,
            tracer: tracer,
            tracerCarried: tracerCarried,
            certificateStores: certificateStores,
            carriedBackends: carriedBackends,
            carriedFilters: carriedFilters,
            fingerprints: fingerprints,
            eventLoopGroup: self.eventLoopGroup
        )
    }

    private func context(
        name: String,
        declaration: PluginDeclaration,
        stateDirectory: URL,
        tokenVerifier: TokenVerifier?,
        issuerNames: Set<String>
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
            tokenVerifier: tokenVerifier,
            issuerNames: issuerNames,
            metrics: self.metrics.factory,
            gatewayMetrics: self.metrics
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
