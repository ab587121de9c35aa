/// One configuration, provisioned: the immutable snapshot every connection serves from.
public final class GatewayRuntime: Sendable {
    public let configuration: GatewayConfiguration
    public let routes: RouteTable<CompiledRoute>
    /// Provisioned backends by name.
    public let backends: [String: any Backend]
    /// TLS certificates of each HTTPS listener, by listener index.
    let certificateStores: [Int: CertificateStore]

    init(
        configuration: GatewayConfiguration,
        routes: RouteTable<CompiledRoute>,
        backends: [String: any Backend],
        certificateStores: [Int: CertificateStore]
    ) {
        self.configuration = configuration
        self.routes = routes
        self.backends = backends
        self.certificateStores = certificateStores
    }

    var limits: RequestLimits { self.configuration.limits }

    /// Shuts every backend down (when the gateway stops).
    public func shutdownBackends() async {
        for backend in self.backends.values {
            await backend.shutdown()
        }
    }
}
