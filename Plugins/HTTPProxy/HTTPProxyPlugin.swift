public import EthicalGateway
import Foundation
import NIOCore
import NIOSSL

/// The `http-proxy` backend: forwards requests to a pool of upstream HTTP/1.1 servers.
///
/// Connections are pooled per event loop and kept alive; request and response bodies stream
/// with backpressure; hop-by-hop headers are removed and `X-Forwarded-*`, `Forwarded` and
/// `X-Request-ID` are set. HTTP/2 clients are proxied over the same HTTP/1.1 pools.
public enum HTTPProxyPlugin: BackendPlugin {
    public typealias Configuration = HTTPProxyConfiguration
    public static let id = "http-proxy"

    public static func provision(_ configuration: HTTPProxyConfiguration, context: PluginContext) throws -> any Backend
    {
        var upstreams: [Upstream] = []
        var issues: [ConfigIssue] = []
        for (offset, entry) in configuration.upstreams.enumerated() {
            switch Upstream.parse(entry.url, index: offset, weight: entry.weight) {
            case .success(let upstream): upstreams.append(upstream)
            case .failure(let error):
                issues.append(
                    ConfigIssue(path: "\(context.configPath).upstreams[\(offset)].url", message: error.message)
                )
            }
        }
        var trusted = TrustedProxies.none
        switch TrustedProxies.parse(configuration.trustedProxies) {
        case .success(let parsed): trusted = parsed
        case .failure(let invalid):
            issues.append(
                ConfigIssue(
                    path: "\(context.configPath).trustedProxies[\(invalid.index)]",
                    message: "expected an IP address or CIDR range such as \"10.0.0.0/8\", found \"\(invalid.text)\""
                )
            )
        }
        var tlsContext: NIOSSLContext?
        if upstreams.contains(where: \.usesTLS) {
            do {
                tlsContext = try Self.makeTLSContext(configuration.tls, context: context)
            } catch let error as ConfigIssueError {
                issues.append(error.issue)
            }
        }
        if !issues.isEmpty { throw ConfigValidationError(issues) }

        let settings = ProxySettings(
            upstreams: upstreams,
            policy: configuration.loadBalancing,
            timeouts: configuration.timeouts,
            maxIdlePerUpstream: configuration.pool.maxIdlePerUpstream,
            poolIdleTimeout: .seconds(configuration.pool.idleTimeoutSeconds),
            preserveHost: configuration.preserveHost,
            trustedProxies: trusted,
            tlsContext: tlsContext,
            tlsServerName: configuration.tls.serverName,
            outlierDetection: configuration.outlierDetection,
            retries: configuration.retries,
            hashOn: configuration.loadBalancing == .consistentHash ? configuration.hashOn : nil,
            hashRing: configuration.loadBalancing == .consistentHash ? HashRing(upstreams: upstreams) : nil,
            requestHeaders: HeaderRewriter(configuration.requestHeaders),
            responseHeaders: HeaderRewriter(configuration.responseHeaders),
            metrics: ProxyMetrics(backend: context.name, upstreams: upstreams, context: context)
        )
        var loops: [ObjectIdentifier: LoopBox] = [:]
        for eventLoop in context.eventLoopGroup.makeIterator() {
            loops[ObjectIdentifier(eventLoop)] = LoopBox(ProxyLoopState(eventLoop: eventLoop, settings: settings))
        }
        var checker: ActiveHealthChecker?
        if let healthCheck = configuration.healthCheck {
            checker = ActiveHealthChecker(
                configuration: healthCheck,
                upstreams: upstreams,
                loops: loops.values.sorted { ObjectIdentifier($0) < ObjectIdentifier($1) },
                logger: context.logger
            )
        }
        return HTTPProxyBackend(settings: settings, loops: loops, healthChecker: checker)
    }

    private static func makeTLSContext(_ tls: UpstreamTLSConfiguration, context: PluginContext) throws -> NIOSSLContext
    {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        if !tls.verify {
            configuration.certificateVerification = .none
        }
        if let caFile = tls.caFile {
            let url = context.resolvePath(caFile)
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(url.path))
            } catch {
                throw context.error("tls.caFile", "\(url.path) does not hold PEM certificates (\(error))")
            }
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw context.error("tls", "upstream TLS cannot be set up: \(error)")
        }
    }
}

/// Holds a loop's state; only that loop reads or writes through it.
final class LoopBox: @unchecked Sendable {
    let state: ProxyLoopState
    init(_ state: ProxyLoopState) { self.state = state }
}

struct HTTPProxyBackend: Backend {
    let settings: ProxySettings
    let loops: [ObjectIdentifier: LoopBox]
    let healthChecker: ActiveHealthChecker?

    func start() {
        for gauge in self.settings.metrics.healthy { gauge.record(1) }
        self.healthChecker?.start()
    }

    func shutdown() async {
        self.healthChecker?.stop()
        for box in self.loops.values {
            try? await box.state.eventLoop.submit { box.state.retire() }.get()
        }
    }

    func handle(_ request: GatewayRequest, response: ResponseWriter) -> any RequestBodyReceiver {
        guard let loop = self.loops[ObjectIdentifier(request.eventLoop)]?.state else {
            // Requests always arrive on the gateway's own loops; anything else is a wiring bug.
            response.respondWithProblem(.internalServerError, detail: "the request arrived on an unknown event loop")
            return DiscardingBodyReceiver.shared
        }
        let exchange = ProxyExchange(request: request, writer: response, loop: loop, settings: self.settings)
        exchange.start()
        return exchange
    }
}
