import CoreMetrics
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
    let settings: ProxySettings
    private var idle: [[UpstreamConnection]]
    private var currentWeights: [Int]
    private(set) var inFlight: [Int]
    /// Set by the active health checker; `false` takes an upstream out of rotation.
    private var healthy: [Bool]
    /// Passive ejection: consecutive failures, ejections so far, and until when.
    private var consecutiveFailures: [Int]
    private var ejections: [Int]
    private var ejectedUntil: [NIODeadline?]
    private var ejectedCount = 0
    /// Retry budget: retries allowed are earned by requests (budgetPercent of them) plus a
    /// small allowance per second; the window restarts every second.
    private var budgetWindowStart = NIODeadline.now()
    private var requestsInWindow = 0
    private var retriesInWindow = 0

    /// This loop's copy of `gateway_upstream_request_duration_seconds`.
    let attemptDurations: LoopHistogram.Recorder

    init(eventLoop: any EventLoop, settings: ProxySettings) {
        let count = settings.upstreams.count
        self.eventLoop = eventLoop
        self.settings = settings
        self.attemptDurations = settings.metrics.duration.recorder(on: eventLoop)
        self.idle = Array(repeating: [], count: count)
        self.currentWeights = Array(repeating: 0, count: count)
        self.inFlight = Array(repeating: 0, count: count)
        self.healthy = Array(repeating: true, count: count)
        self.consecutiveFailures = Array(repeating: 0, count: count)
        self.ejections = Array(repeating: 0, count: count)
        self.ejectedUntil = Array(repeating: nil, count: count)
    }

    /// The active health checker's verdict for an upstream.
    func setHealthy(_ index: Int, _ healthy: Bool) {
        self.healthy[index] = healthy
        if healthy { self.consecutiveFailures[index] = 0 }
    }

    /// A request to `upstream` failed at the connection level (refused, reset, timed out).
    func recordFailure(_ upstream: Upstream) {
        let outlier = self.settings.outlierDetection
        guard outlier.consecutiveFailures > 0 else { return }
        self.consecutiveFailures[upstream.index] += 1
        guard self.consecutiveFailures[upstream.index] >= outlier.consecutiveFailures else { return }
        self.consecutiveFailures[upstream.index] = 0
        self.ejections[upstream.index] += 1
        let factor = Double(1 << min(self.ejections[upstream.index] - 1, 20))
        let seconds = min(outlier.baseEjectionSeconds * factor, outlier.maxEjectionSeconds)
        if self.ejectedUntil[upstream.index] == nil { self.ejectedCount += 1 }
        self.ejectedUntil[upstream.index] = .now() + .seconds(seconds)
    }

    /// Counts a request towards the retry budget.
    func countRequest() {
        self.rollBudgetWindow()
        self.requestsInWindow += 1
    }

    /// Takes one retry from the budget, or says there is none left.
    func takeRetry() -> Bool {
        self.rollBudgetWindow()
        let retries = self.settings.retries
        let earned = Int(Double(self.requestsInWindow) * retries.budgetPercent / 100)
        guard self.retriesInWindow < max(earned, retries.minRetriesPerSecond) else { return false }
        self.retriesInWindow += 1
        return true
    }

    private func rollBudgetWindow() {
        let now = NIODeadline.now()
        if now - self.budgetWindowStart >= TimeAmount.seconds(Int64(1)) {
            self.budgetWindowStart = now
            self.requestsInWindow = 0
            self.retriesInWindow = 0
        }
    }

    /// A request to `upstream` got a response.
    func recordSuccess(_ upstream: Upstream) {
        self.consecutiveFailures[upstream.index] = 0
    }

    /// Whether `upstream` may take requests now.
    private func isAvailable(_ index: Int, now: NIODeadline?) -> Bool {
        guard self.healthy[index] else { return false }
        guard let until = self.ejectedUntil[index], let now else { return true }
        if now < until { return false }
        self.ejectedUntil[index] = nil
        self.ejectedCount -= 1
        return true
    }

    /// Whether any upstream is in rotation (not failed or unhealthy, and not ejected unless
    /// every one left is; see ``ejectionClock(excluding:)``).
    func hasAvailableUpstream(excluding excluded: Set<Int>) -> Bool {
        let now = self.ejectionClock(excluding: excluded)
        return self.settings.upstreams.contains { !excluded.contains($0.index) && self.isAvailable($0.index, now: now) }
    }

    /// The time ejections are checked against, or `nil` when they are not: when nothing is
    /// ejected (so the common path reads no clock), and when every healthy upstream the request
    /// may still use is ejected. Then ejection is ignored, as Envoy's panic routing does:
    /// passive ejection prefers some upstreams to others, it never takes the last ones out. An
    /// upstream that fails a few requests in a row (restarting, or made to by a client's
    /// requests) must not turn every route on it into 503s for the ejection's length; one the
    /// active health check marked unhealthy stays out.
    private func ejectionClock(excluding excluded: Set<Int>) -> NIODeadline? {
        guard self.ejectedCount > 0 else { return nil }
        let now = NIODeadline.now()
        let anyInRotation = self.settings.upstreams.contains {
            !excluded.contains($0.index) && self.isAvailable($0.index, now: now)
        }
        return anyInRotation ? now : nil
    }

    /// Picks an upstream, skipping `excluded` (those that already failed this request).
    func pick(excluding excluded: Set<Int>, hashKey: String? = nil) -> Upstream? {
        let now = self.ejectionClock(excluding: excluded)
        let picked = self.pick(excluding: excluded, hashKey: hashKey, now: now)
        if picked != nil, now == nil, self.ejectedCount > 0 { self.settings.metrics.panicRouted.increment() }
        return picked
    }

    private func pick(excluding excluded: Set<Int>, hashKey: String?, now: NIODeadline?) -> Upstream? {
        let upstreams = self.settings.upstreams
        if let hashKey, let ring = self.settings.hashRing {
            for index in ring.candidates(for: hashKey)
            where !excluded.contains(index) && self.isAvailable(index, now: now) {
                return upstreams[index]
            }
            return nil
        }
        switch self.settings.policy {
        case .leastRequest:
            // Fewest in flight per unit of weight (compared without division); ties rotate, so
            // light sequential traffic still spreads.
            self.rotation = (self.rotation + 1) % max(upstreams.count, 1)
            var best: Upstream?
            for offset in 0..<upstreams.count {
                let upstream = upstreams[(self.rotation + offset) % upstreams.count]
                guard !excluded.contains(upstream.index), self.isAvailable(upstream.index, now: now) else { continue }
                if let current = best,
                    self.inFlight[upstream.index] * current.weight >= self.inFlight[current.index] * upstream.weight
                {
                    continue
                }
                best = upstream
            }
            return best
        case .roundRobin, .consistentHash:
            // Smooth weighted round robin (as nginx): even spread, weights honoured exactly.
            var total = 0
            var best: Upstream?
            for upstream in upstreams
            where !excluded.contains(upstream.index) && self.isAvailable(upstream.index, now: now) {
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
    private var sweeper: Scheduled<Void>?
    /// Set by ``retire()``: connections coming back from a request are closed, not pooled.
    private var retired = false
    /// `gateway_upstream_requests_total` handles by upstream index and code, made on first use.
    private var requestCounters: [Int: [String: Counter]] = [:]

    /// Counts an answer (or `error`: none) from `upstream`.
    func countResponse(_ upstream: Upstream, code: String) {
        if let counter = self.requestCounters[upstream.index]?[code] {
            counter.increment()
            return
        }
        let counter = self.settings.metrics.requests(upstream, code: code)
        self.requestCounters[upstream.index, default: [:]][code] = counter
        counter.increment()
    }
    /// Exchanges waiting on a timeout (first byte, idle), by identity; see `ProxyLoopState+Watchdog.swift`.
    var watchedExchanges: [ObjectIdentifier: ProxyExchange] = [:]
    /// The one timer of the loop's exchange timeouts, and when it fires.
    var watchdogTimer: Scheduled<Void>?
    var watchdogTimerDeadline = NIODeadline.distantFuture

    func started(_ upstream: Upstream) { self.inFlight[upstream.index] += 1 }
    func finished(_ upstream: Upstream) { self.inFlight[upstream.index] -= 1 }

    /// An idle pooled connection to `upstream`, if one is open (the common case: no future,
    /// no allocation).
    func idleConnection(to upstream: Upstream) -> UpstreamConnection? {
        while let pooled = self.idle[upstream.index].popLast() {
            pooled.handler.onIdleClose = nil
            if pooled.channel.isActive { return pooled }
        }
        return nil
    }

    /// A new connection to `upstream`. UpstreamConnection is loop-bound; the future is only
    /// ever consumed on this loop.
    func connect(to upstream: Upstream) -> EventLoopFuture<UpstreamConnection> {
        let tlsContext = self.settings.tlsContext
        let serverName = self.settings.tlsServerName
        let connectTimeout = TimeAmount.seconds(self.settings.timeouts.connectSeconds)
        // Connecting includes the TLS handshake: both within one `connectSeconds`.
        let deadline = NIODeadline.now() + connectTimeout
        let handshake: EventLoopPromise<Void>? =
            upstream.usesTLS && tlsContext != nil ? self.eventLoop.makePromise() : nil
        let bootstrap = ClientBootstrap(group: self.eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let handshake, let tlsContext {
                        try channel.pipeline.syncOperations.addHandlers([
                            try makeTLSHandler(context: tlsContext, upstream: upstream, serverName: serverName),
                            UpstreamTLSHandshakeHandler(completed: handshake),
                        ])
                    }
                    // The proxy's own encoder (heads go out as bytes written once, no outbound
                    // header validation: requests are built from heads the gateway already
                    // parsed plus values the proxy generates) and its own response decoder.
                    try channel.pipeline.syncOperations.addHandlers([
                        UpstreamRequestEncoder(), UpstreamConnectionHandler(),
                    ])
                }
            }
        let eventLoop = self.eventLoop
        let connected = bootstrap.connect(to: upstream)
        if let handshake { connected.cascadeFailure(to: handshake) }
        return connected.assumeIsolated().flatMap { channel in
            guard let handshake else { return eventLoop.makeSucceededFuture(channel) }
            let timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
                handshake.fail(ChannelError.connectTimeout(connectTimeout))
            }
            return handshake.futureResult.assumeIsolated().map { channel }
                .flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }
                .always { _ in timer.cancel() }
                .nonisolated()
        }.flatMapThrowing { channel in
            let pipeline = channel.pipeline.syncOperations
            return UpstreamConnection(
                channel: channel,
                handler: try pipeline.handler(type: UpstreamConnectionHandler.self),
                encoder: try pipeline.handler(type: UpstreamRequestEncoder.self),
                upstream: upstream
            )
        }.nonisolated()
    }

    /// Returns a connection that finished a response cleanly to the pool.
    func release(_ connection: UpstreamConnection) {
        connection.handler.delegate = nil
        let index = connection.upstream.index
        guard !self.retired, connection.channel.isActive, self.idle[index].count < self.settings.maxIdlePerUpstream
        else {
            connection.channel.close(promise: nil)
            return
        }
        connection.handler.onIdleClose = { [weak self, weak connection] in
            guard let self, let connection else { return }
            self.idle[index].removeAll { $0 === connection }
        }
        connection.idleSince = .now()
        self.idle[index].append(connection)
        self.startSweeperIfNeeded()
        // Keep reading while idle, so an upstream closing the connection is noticed at once.
        connection.channel.read()
    }
}

extension ProxyLoopState {
    /// The backend was retired (a reload removed or changed it, or the gateway stops): closes
    /// the pooled connections; connections still carrying a request close when it ends.
    func retire() {
        self.retired = true
        self.sweeper?.cancel()
        self.sweeper = nil
        for index in self.idle.indices {
            let connections = self.idle[index]
            self.idle[index].removeAll()
            for connection in connections { connection.channel.close(promise: nil) }
        }
    }

    /// Closes pooled connections idle for longer than the pool's idle timeout. Runs every half
    /// timeout while the pool holds connections, so a connection lives between one and one and
    /// a half timeouts after its last request.
    fileprivate func startSweeperIfNeeded() {
        guard self.sweeper == nil else { return }
        let interval = TimeAmount.nanoseconds(max(self.settings.poolIdleTimeout.nanoseconds / 2, 1_000_000))
        self.sweeper = self.eventLoop.assumeIsolated().scheduleTask(in: interval) {
            self.sweeper = nil
            let now = NIODeadline.now()
            var remaining = 0
            for index in self.idle.indices {
                let expired = self.idle[index].filter { now - $0.idleSince >= self.settings.poolIdleTimeout }
                for connection in expired { connection.channel.close(promise: nil) }
                self.idle[index].removeAll { now - $0.idleSince >= self.settings.poolIdleTimeout }
                remaining += self.idle[index].count
            }
            if remaining > 0 { self.startSweeperIfNeeded() }
        }
    }
}

@available(*, unavailable)
extension ProxyLoopState: Sendable {}

/// The immutable part of a provisioned `http-proxy` backend. A class: every exchange and loop
/// holds it, and as a struct of sixteen fields each exchange copied (retained, then released)
/// every one of them, about 3,700 instructions of a proxied request.
final class ProxySettings: Sendable {
    let upstreams: [Upstream]
    let policy: LoadBalancingPolicy
    let timeouts: ProxyTimeouts
    let maxIdlePerUpstream: Int
    let poolIdleTimeout: TimeAmount
    let preserveHost: Bool
    let trustedProxies: TrustedProxies
    let tlsContext: NIOSSLContext?
    let tlsServerName: String?
    let outlierDetection: OutlierDetectionConfiguration
    let retries: RetryConfiguration
    let hashOn: HashKeyConfiguration?
    let hashRing: HashRing?
    let requestHeaders: HeaderRewriter
    let responseHeaders: HeaderRewriter
    let metrics: ProxyMetrics

    init(
        upstreams: [Upstream],
        policy: LoadBalancingPolicy,
        timeouts: ProxyTimeouts,
        maxIdlePerUpstream: Int,
        poolIdleTimeout: TimeAmount,
        preserveHost: Bool,
        trustedProxies: TrustedProxies,
        tlsContext: NIOSSLContext?,
        tlsServerName: String?,
        outlierDetection: OutlierDetectionConfiguration,
        retries: RetryConfiguration,
        hashOn: HashKeyConfiguration?,
        hashRing: HashRing?,
        requestHeaders: HeaderRewriter,
        responseHeaders: HeaderRewriter,
        metrics: ProxyMetrics
    ) {
        self.upstreams = upstreams
        self.policy = policy
        self.timeouts = timeouts
        self.maxIdlePerUpstream = maxIdlePerUpstream
        self.poolIdleTimeout = poolIdleTimeout
        self.preserveHost = preserveHost
        self.trustedProxies = trustedProxies
        self.tlsContext = tlsContext
        self.tlsServerName = tlsServerName
        self.outlierDetection = outlierDetection
        self.retries = retries
        self.hashOn = hashOn
        self.hashRing = hashRing
        self.requestHeaders = requestHeaders
        self.responseHeaders = responseHeaders
        self.metrics = metrics
    }
}

/// The TLS handler towards an `https://` upstream: SNI and certificate name from `serverName`,
/// else the upstream's host (IP addresses are verified against the certificate's IP entries).
func makeTLSHandler(context: NIOSSLContext, upstream: Upstream, serverName: String?) throws -> NIOSSLClientHandler {
    let name = serverName ?? upstream.host
    let isAddress = (try? SocketAddress(ipAddress: name, port: 0)) != nil
    return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : name)
}
