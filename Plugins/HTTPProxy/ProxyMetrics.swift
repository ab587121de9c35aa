import CoreMetrics
import EthicalGateway

/// The metrics of one `http-proxy` backend, created through the gateway's swift-metrics
/// factory: `gateway_upstream_requests_total{backend,upstream,code}` (`code="error"`: no answer),
/// `gateway_upstream_healthy{backend,upstream}` (1 or 0, from the active health check),
/// `gateway_retries_total{backend}`, `gateway_upstream_panic_routed_total{backend}` (requests sent to
/// an ejected upstream because every upstream left was ejected) and the histogram `gateway_upstream_request_duration_seconds{backend}`
/// (one observation per attempt, from taking a connection to the response's end or the
/// failure). Counters are atomic (no lock); the per-upstream, per-code counter handles are
/// cached per event loop (``ProxyLoopState``); the histogram is recorded per loop (``LoopHistogram``).
struct ProxyMetrics: Sendable {
    let backend: String
    let factory: any MetricsFactory
    let retries: Counter
    let panicRouted: Counter
    let duration: LoopHistogram
    /// By upstream index.
    let healthy: [Gauge]

    init(backend: String, upstreams: [Upstream], context: PluginContext) {
        let factory = context.metrics
        self.backend = backend
        self.factory = factory
        self.retries = Counter(label: "gateway_retries_total", dimensions: [("backend", backend)], factory: factory)
        self.panicRouted = Counter(
            label: "gateway_upstream_panic_routed_total",
            dimensions: [("backend", backend)],
            factory: factory
        )
        self.duration = context.loopHistogram(
            "gateway_upstream_request_duration_seconds",
            help: "Upstream attempts, from taking a connection to the end of the response or the failure, by backend.",
            labels: [("backend", backend)]
        )
        self.healthy = upstreams.map {
            Gauge(
                label: "gateway_upstream_healthy",
                dimensions: [("backend", backend), ("upstream", $0.url)],
                factory: factory
            )
        }
    }

    /// The counter of answers with `code` from `upstream`.
    func requests(_ upstream: Upstream, code: String) -> Counter {
        Counter(
            label: "gateway_upstream_requests_total",
            dimensions: [("backend", self.backend), ("upstream", upstream.url), ("code", code)],
            factory: self.factory
        )
    }
}
