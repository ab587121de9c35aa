public import NIOCore

/// One configuration, provisioned: the immutable snapshot requests are served from. A reload
/// builds a new one and swaps it in (``LiveRuntime``); requests in flight finish on the one they
/// started with.
public final class GatewayRuntime: Sendable {
    public let configuration: GatewayConfiguration
    /// The text the configuration was read from, and its version.
    public let source: ConfigSource
    public let routes: RouteTable<CompiledRoute>
    /// Provisioned backends by name.
    public let backends: [String: any Backend]
    /// Provisioned filters by name (the auth filters of routes are not among them).
    let filters: [String: any Filter]
    /// The issuers; `nil` when the configuration declares none.
    let authenticator: Authenticator?
    /// The gateway-wide verifier plugins hold; ``activate()`` installs ``authenticator`` in it.
    let tokenVerifier: TokenVerifier
    /// Who may use the admin API; `nil` when the configuration has no `admin`.
    public let adminAccess: AdminAccess?
    /// Where requests are logged; `nil` without `accessLog`.
    let accessLog: AccessLogWriter?
    /// Whether ``accessLog`` was taken over from the runtime this one replaces.
    let accessLogCarried: Bool
    /// Makes and exports spans; `nil` without `tracing`.
    let tracer: RequestTracer?
    /// Whether ``tracer`` was taken over from the runtime this one replaces.
    let tracerCarried: Bool
    /// TLS certificates of each HTTPS listener, by listener index.
    let certificateStores: [Int: CertificateStore]
    /// Names of the backends and filters taken over from the runtime this one replaces (the same
    /// instances): they are not started again, and retiring the old runtime does not stop them.
    let carriedBackends: Set<String>
    let carriedFilters: Set<String>
    /// The files each declaration names, by content (``ReferencedFiles``), keyed `issuers`,
    /// `backends.<name>`, `filters.<name>`.
    let fingerprints: [String: [String: String]]
    /// Requests in flight that started on this runtime, per event loop.
    let inFlight: [ObjectIdentifier: InFlightCounter]

    init(
        configuration: GatewayConfiguration,
        source: ConfigSource,
        routes: RouteTable<CompiledRoute>,
        backends: [String: any Backend],
        filters: [String: any Filter],
        authenticator: Authenticator?,
        tokenVerifier: TokenVerifier,
        adminAccess: AdminAccess?,
        accessLog: AccessLogWriter?,
        accessLogCarried: Bool,
        tracer: RequestTracer?,
        tracerCarried: Bool,
        certificateStores: [Int: CertificateStore],
        carriedBackends: Set<String>,
        carriedFilters: Set<String>,
        fingerprints: [String: [String: String]],
        eventLoopGroup: any EventLoopGroup
    ) {
        self.configuration = configuration
        self.source = source
        self.routes = routes
        self.backends = backends
        self.filters = filters
        self.authenticator = authenticator
        self.tokenVerifier = tokenVerifier
        self.adminAccess = adminAccess
        self.accessLog = accessLog
        self.accessLogCarried = accessLogCarried
        self.tracer = tracer
        self.tracerCarried = tracerCarried
        self.certificateStores = certificateStores
        self.carriedBackends = carriedBackends
        self.carriedFilters = carriedFilters
        self.fingerprints = fingerprints
        var inFlight: [ObjectIdentifier: InFlightCounter] = [:]
        for eventLoop in eventLoopGroup.makeIterator() {
            inFlight[ObjectIdentifier(eventLoop)] = InFlightCounter(eventLoop: eventLoop)
        }
        self.inFlight = inFlight
    }

    var limits: RequestLimits { self.configuration.limits }

    /// Starts the background work of every backend and filter this runtime did not take over
    /// (the lifecycle's `start` step). When one fails, everything new is shut down again and the
    /// error names the plugin's JSON path.
    func start() async throws {
        do {
            if let accessLog = self.accessLog, !self.accessLogCarried {
                try Self.starting("$.accessLog") { try accessLog.open() }
            }
            if let tracer = self.tracer, !self.tracerCarried {
                try Self.starting("$.tracing") { try tracer.start() }
            }
            for (name, filter) in self.filters.sorted(by: { $0.key < $1.key }) where !self.carriedFilters.contains(name)
            {
                try Self.starting("$.filters.\(name)") { try filter.start() }
            }
            for (name, backend) in self.backends.sorted(by: { $0.key < $1.key })
            where !self.carriedBackends.contains(name) {
                try Self.starting("$.backends.\(name)") { try backend.start() }
            }
        } catch {
            await self.shutdownNew()
            throw error
        }
    }

    private static func starting(_ path: String, _ start: () throws -> Void) throws {
        do {
            try start()
        } catch let error as ConfigValidationError {
            throw error
        } catch let error as ConfigIssueError {
            throw ConfigValidationError([error.issue])
        } catch {
            throw ConfigValidationError([ConfigIssue(path: path, message: "starting failed: \(error)")])
        }
    }

    /// Makes plugins verify tokens with this runtime's issuers.
    func activate() {
        self.tokenVerifier.install(self.authenticator)
    }

    /// Shuts down what this runtime made and did not take over (a runtime that failed to start
    /// or was never applied).
    func shutdownNew() async {
        if let accessLog = self.accessLog, !self.accessLogCarried { await accessLog.close() }
        if let tracer = self.tracer, !self.tracerCarried { await tracer.close() }
        for (name, filter) in self.filters where !self.carriedFilters.contains(name) { await filter.shutdown() }
        for (name, backend) in self.backends where !self.carriedBackends.contains(name) { await backend.shutdown() }
    }

    /// Shuts down what `successor` did not take over from this runtime.
    /// Whether ``retire(replacedBy:)`` would close or shut down anything: when `successor`
    /// carries every backend and filter over and keeps the access log and tracer, requests
    /// still in flight on this runtime (a relay's long-lived streams) need not be waited for.
    func retiresAnything(replacedBy successor: GatewayRuntime) -> Bool {
        if let accessLog = self.accessLog, successor.accessLog !== accessLog { return true }
        if let tracer = self.tracer, successor.tracer !== tracer { return true }
        if self.filters.keys.contains(where: { !successor.carriedFilters.contains($0) }) { return true }
        return self.backends.keys.contains { !successor.carriedBackends.contains($0) }
    }

    func retire(replacedBy successor: GatewayRuntime) async {
        if let accessLog = self.accessLog, successor.accessLog !== accessLog { await accessLog.close() }
        if let tracer = self.tracer, successor.tracer !== tracer { await tracer.close() }
        for (name, filter) in self.filters where !successor.carriedFilters.contains(name) { await filter.shutdown() }
        for (name, backend) in self.backends where !successor.carriedBackends.contains(name) {
            await backend.shutdown()
        }
    }

    /// Tells the backends that `successor` does not take over (all of them when there is none:
    /// the gateway is stopping) that they are about to be retired (``Backend/quiesce()``).
    func quiesceBackends(replacedBy successor: GatewayRuntime?) {
        for (name, backend) in self.backends where successor?.carriedBackends.contains(name) != true {
            backend.quiesce()
        }
    }

    /// Shuts every backend and filter down (when the gateway stops, or a runtime that was
    /// built only to be checked).
    public func shutdownBackends() async {
        await self.accessLog?.close()
        await self.tracer?.close()
        for filter in self.filters.values { await filter.shutdown() }
        for backend in self.backends.values { await backend.shutdown() }
    }

    /// How many requests that started on this runtime are still in flight.
    func requestsInFlight() async -> Int {
        var total = 0
        for counter in self.inFlight.values {
            total += await counter.read()
        }
        return total
    }
}
