public import CoreMetrics
import Foundation
import Metrics
import NIOConcurrencyHelpers
public import NIOCore
public import Prometheus

/// One gateway's metrics: a Prometheus registry with swift-metrics as the API (plugins record
/// through ``factory``), plus the per-event-loop HTTP request metrics that the request path
/// records without locks (``HTTPLoopMetrics``), added up when `/metrics` is scraped. Metric names
/// are a contract, documented in the README ("Metrics").
public final class GatewayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// What plugins and the gateway's own parts create their counters and gauges with.
    public let factory: any MetricsFactory
    private let reloads: NIOLockedValueBox<[String: CoreMetrics.Counter]> = NIOLockedValueBox([:])
    private let refusals: NIOLockedValueBox<[String: CoreMetrics.Counter]> = NIOLockedValueBox([:])
    private let connections: NIOLockedValueBox<[String: Meter]> = NIOLockedValueBox([:])
    /// Lock-free per-loop histograms by name and label values, in the order they were made.
    private let loopHistograms: NIOLockedValueBox<[String: LoopHistogram]> = NIOLockedValueBox([:])

    public init(version: String = GatewayVersion.current) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = HTTPMetricsSnapshot.durationBuckets.map {
            .nanoseconds(Int64($0 * 1e9))
        }
        self.registry = registry
        self.factory = factory
        CoreMetrics.Gauge(label: "gateway_build_info", dimensions: [("version", version)], factory: factory).record(1)
    }

    /// A configuration change applied (`success`) or refused (`failure`).
    func countReload(succeeded: Bool) {
        let result = succeeded ? "success" : "failure"
        let counter = self.reloads.withLockedValue { counters in
            if let counter = counters[result] { return counter }
            let counter = CoreMetrics.Counter(
                label: "gateway_config_reloads_total",
                dimensions: [("result", result)],
                factory: self.factory
            )
            counters[result] = counter
            return counter
        }
        counter.increment()
    }

    /// A token refused, by issuer (`-` when none could be told) and reason (the refusal category).
    func countAuthRefusal(issuer: String, reason: String) {
        let key = "\(issuer)\u{0}\(reason)"
        let counter = self.refusals.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = CoreMetrics.Counter(
                label: "gateway_auth_refusals_total",
                dimensions: [("issuer", issuer), ("reason", reason)],
                factory: self.factory
            )
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    /// A key-set fetch of an issuer (`gateway_jwks_fetches_total{issuer,result}`); a successful
    /// one also sets `gateway_jwks_last_refresh_timestamp_seconds{issuer}` (Unix time).
    func countKeyFetch(issuer: String, succeeded: Bool) {
        CoreMetrics.Counter(
            label: "gateway_jwks_fetches_total",
            dimensions: [("issuer", issuer), ("result", succeeded ? "success" : "failure")],
            factory: self.factory
        ).increment()
        guard succeeded else { return }
        CoreMetrics.Gauge(
            label: "gateway_jwks_last_refresh_timestamp_seconds",
            dimensions: [("issuer", issuer)],
            factory: self.factory
        )
        .record(Date().timeIntervalSince1970)
    }

    /// The gauge of open connections of a listener and protocol (`http1`, `h2`, `tls`...).
    func openConnections(listener: String, protocol name: String) -> Meter {
        self.connections.withLockedValue { gauges in
            let key = "\(listener)\u{0}\(name)"
            if let gauge = gauges[key] { return gauge }
            let gauge = Meter(
                label: "gateway_connections_open",
                dimensions: [("listener", listener), ("protocol", name)],
                factory: self.factory
            )
            gauges[key] = gauge
            return gauge
        }
    }

    /// The per-loop histogram `name` with these labels: made on first use, the same instance
    /// afterwards (a backend re-created by a reload keeps its series). Bounds default to the
    /// duration buckets of the HTTP metrics (1 ms to 10 s).
    public func loopHistogram(
        _ name: String,
        help: String,
        labels: [(String, String)],
        bounds: [Double] = HTTPMetricsSnapshot.durationBuckets,
        eventLoopGroup: any EventLoopGroup
    ) -> LoopHistogram {
        let key = ([name] + labels.flatMap { [$0.0, $0.1] }).joined(separator: "\u{0}")
        return self.loopHistograms.withLockedValue { histograms in
            if let existing = histograms[key] { return existing }
            let histogram = LoopHistogram(
                name: name,
                help: help,
                labels: labels,
                bounds: bounds,
                eventLoopGroup: eventLoopGroup
            )
            histograms[key] = histogram
            return histogram
        }
    }

    /// Every per-loop histogram in the text format, each family once, series sorted by labels.
    func loopHistogramsText() async -> String {
        let all = self.loopHistograms.withLockedValue { Array($0.values) }
        var families: [String: [(labels: String, help: String, histogram: Histogram)]] = [:]
        for histogram in all {
            guard let total = await histogram.snapshot() else { continue }
            families[histogram.name, default: []].append((histogram.labelText, histogram.help, total))
        }
        var text = ""
        for (name, series) in families.sorted(by: { $0.key < $1.key }) {
            text += "# HELP \(name) \(series[0].help)\n# TYPE \(name) histogram\n"
            for (labels, _, histogram) in series.sorted(by: { $0.labels < $1.labels }) {
                HTTPMetricsSnapshot.write(name, labels: labels, histogram, into: &text)
            }
        }
        return text
    }
}
