import CoreMetrics

/// One relay's metrics for the gateway's `/metrics`: `gateway_relay_connections{backend}`,
/// `gateway_relay_subscriptions{backend,namespace}`, `gateway_relay_publications_total{backend,namespace}`
/// and `gateway_relay_dropped_total{backend,namespace}`. Handles are cached per event loop
/// (``RelayLoopMetrics``), so recording takes no lock; the values are atomic.
struct RelayMetrics: Sendable {
    let backend: String
    let factory: any MetricsFactory
    let connections: Meter

    init(backend: String, factory: any MetricsFactory) {
        self.backend = backend
        self.factory = factory
        self.connections = Meter(
            label: "gateway_relay_connections",
            dimensions: [("backend", backend)],
            factory: factory
        )
    }
}

/// The per-namespace handles of one event loop; touched only on that loop.
final class RelayLoopMetrics: @unchecked Sendable {
    let shared: RelayMetrics
    private var subscriptions: [String: Meter] = [:]
    private var publications: [String: Counter] = [:]
    private var dropped: [String: Counter] = [:]

    init(_ shared: RelayMetrics) {
        self.shared = shared
    }

    func subscriptions(_ namespace: String) -> Meter {
        if let meter = self.subscriptions[namespace] { return meter }
        let meter = Meter(
            label: "gateway_relay_subscriptions",
            dimensions: self.dimensions(namespace),
            factory: self.shared.factory
        )
        self.subscriptions[namespace] = meter
        return meter
    }

    func publications(_ namespace: String) -> Counter {
        if let counter = self.publications[namespace] { return counter }
        let counter = Counter(
            label: "gateway_relay_publications_total",
            dimensions: self.dimensions(namespace),
            factory: self.shared.factory
        )
        self.publications[namespace] = counter
        return counter
    }

    func dropped(_ namespace: String) -> Counter {
        if let counter = self.dropped[namespace] { return counter }
        let counter = Counter(
            label: "gateway_relay_dropped_total",
            dimensions: self.dimensions(namespace),
            factory: self.shared.factory
        )
        self.dropped[namespace] = counter
        return counter
    }

    private func dimensions(_ namespace: String) -> [(String, String)] {
        [("backend", self.shared.backend), ("namespace", namespace)]
    }
}
