import EthicalGateway
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Everything an `http-proxy` backend keeps per event loop: idle connections per upstream, the
/// balancer's position and the requests in flight. Only its own loop touches it, so the data
/// path takes no lock and never hops loops.
final class ProxyLoopState {
    let eventLoop: any EventLoop
    private let settings: ProxySettings
    private var idle: [[UpstreamConnection]]
    private var currentWeights: [Int]
    private(set) var inFlight: [Int]

    init(eventLoop: any EventLoop, settings: ProxySettings) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.idle = Array(repeating: [], count: settings.upstreams.count)
        self.currentWeights = Array(repeating: 0, count: settings.upstreams.count)
        self.inFlight = Array(repeating: 0, count: settings.upstreams.count)
    }

    /// Picks an upstream, skipping `excluded` (those that already failed this request).
    func pick(excluding excluded: Set<Int>) -> Upstream? {
        let upstreams = self.settings.upstreams
        switch self.settings.policy {
        case .leastRequest:
            // Fewest in flight per unit of weight (compared without division); ties rotate, so
            // light sequential traffic still spreads.
            self.rotation = (self.rotation + 1) % max(upstreams.count, 1)
            var best: Upstream?
            for offset in 0..<upstreams.count {
                let upstream = upstreams[(self.rotation + offset) % upstreams.count]
                guard !excluded.contains(upstream.index) else { continue }
                if let current = best,
                    self.inFlight[upstream.index] * current.weight >= self.inFlight[current.index] * upstream.weight
                {
                    continue
                }
                best = upstream
            }
            return best
        case .roundRobin:
            // Smooth weighted round robin (as nginx): even spread, weights honoured exactly.
            var total = 0
            var best: Upstream?
            for upstream in upstreams where !excluded.contains(upstream.index) {
                total += upstream.weight
                self.currentWeights[upstream.index] += upstream.weight
                if best == nil || self.currentWeights[upstream.index] > self.currentWeights[best!.index] {
                    best = upstream
                }
            }
            if let best { self.currentWeights[best.index] -= total }
            return best
        }
    }

    private var rotation = 0

    func started(_ upstream: Upstream) { self.inFlight[upstream.index] += 1 }
    func finished(_ upstream: Upstream) { self.inFlight[upstream.index] -= 1 }

    /// An idle connection to `upstream`, or a new one.
    func connection(to upstream: Upstream) -> EventLoopFuture<UpstreamConnection> {
        // UpstreamConnection is loop-bound; the future is only ever consumed on this loop.
        while let pooled = self.idle[upstream.index].popLast() {
            pooled.idleTimer?.cancel()
            pooled.idleTimer = nil
            pooled.handler.onIdleClose = nil
            if pooled.channel.isActive {
                return self.eventLoop.makeSucceededFuture(pooled)
            }
        }
        return self.connect(to: upstream)
    }

    private func connect(to upstream: Upstream) -> EventLoopFuture<UpstreamConnection> {
        let tlsContext = self.settings.tlsContext
        let serverName = self.settings.tlsServerName ?? upstream.host
        let bootstrap = ClientBootstrap(group: self.eventLoop)
            .connectTimeout(.seconds(self.settings.timeouts.connectSeconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if upstream.usesTLS, let tlsContext {
                        let isAddress = (try? SocketAddress(ipAddress: serverName, port: 0)) != nil
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tlsContext, serverHostname: isAddress ? nil : serverName)
                        )
                    }
                    // Requests are built from heads llhttp already parsed plus values the proxy
                    // generates, so re-validating every header on the way out is wasted work.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnectionHandler())
                }
            }
        return bootstrap.connect(host: upstream.host, port: upstream.port).assumeIsolated().flatMapThrowing { channel in
            let handler = try channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self)
            return UpstreamConnection(channel: channel, handler: handler, upstream: upstream)
        }.nonisolated()
    }

    /// Returns a connection that finished a response cleanly to the pool.
    func release(_ connection: UpstreamConnection) {
        connection.handler.delegate = nil
        let index = connection.upstream.index
        guard connection.channel.isActive, self.idle[index].count < self.settings.maxIdlePerUpstream else {
            connection.channel.close(promise: nil)
            return
        }
        connection.handler.onIdleClose = { [weak self, weak connection] in
            guard let self, let connection else { return }
            self.idle[index].removeAll { $0 === connection }
        }
        connection.idleTimer = self.eventLoop.assumeIsolated().scheduleTask(in: self.settings.poolIdleTimeout) {
            [weak connection] in
            connection?.channel.close(promise: nil)
        }
        self.idle[index].append(connection)
        // Keep reading while idle, so an upstream closing the connection is noticed at once.
        connection.channel.read()
    }
}

@available(*, unavailable)
extension ProxyLoopState: Sendable {}

/// The immutable part of a provisioned `http-proxy` backend.
struct ProxySettings: Sendable {
    let upstreams: [Upstream]
    let policy: LoadBalancingPolicy
    let timeouts: ProxyTimeouts
    let maxIdlePerUpstream: Int
    let poolIdleTimeout: TimeAmount
    let retryAttempts: Int
    let preserveHost: Bool
    let trustedProxies: TrustedProxies
    let tlsContext: NIOSSLContext?
    let tlsServerName: String?
}
