import NIOCore
import NIOHTTP1

/// The HTTP request metrics of one event loop: requests by route, method and status code, and
/// duration and size histograms by route. Recorded on the loop with plain arithmetic (no lock,
/// no atomic); `/metrics` reads every loop's copy on its loop and adds them up
/// (``HTTPMetricsSnapshot``).
final class HTTPLoopMetrics: @unchecked Sendable {
    struct RequestKey: Hashable, Sendable {
        var route: String
        var method: String
        var code: UInt
    }

    /// Only on the owning loop.
    private(set) var requests: [RequestKey: Int] = [:]
    private(set) var durations: [String: Histogram] = [:]
    private(set) var requestSizes: [String: Histogram] = [:]
    private(set) var responseSizes: [String: Histogram] = [:]

    /// One finished exchange. `route` is `none` for requests no route took (404, 400, 431...).
    func record(route: String, method: HTTPMethod, code: UInt, seconds: Double, requestBytes: Int, responseBytes: Int) {
        self.requests[RequestKey(route: route, method: Self.label(method), code: code), default: 0] += 1
        self.durations[route, default: Histogram(bounds: HTTPMetricsSnapshot.durationBuckets)].observe(seconds)
        self.requestSizes[route, default: Histogram(bounds: HTTPMetricsSnapshot.sizeBuckets)].observe(
            Double(requestBytes)
        )
        self.responseSizes[route, default: Histogram(bounds: HTTPMetricsSnapshot.sizeBuckets)].observe(
            Double(responseBytes)
        )
    }

    /// The method's bounded label (``NIOHTTP1/HTTPMethod/boundedName``).
    static func label(_ method: HTTPMethod) -> String { method.boundedName }
}

/// A Prometheus histogram's state: cumulative-at-export bucket counts, sum and count.
struct Histogram: Sendable {
    let bounds: [Double]
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    private(set) var counts: [Int]
    private(set) var sum: Double = 0
    private(set) var count = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        self.counts = Array(repeating: 0, count: bounds.count + 1)
    }

    mutating func observe(_ value: Double) {
        var index = 0
        while index < self.bounds.count && value > self.bounds[index] { index += 1 }
        self.counts[index] += 1
        self.sum += value
        self.count += 1
    }

    /// Adds `other` (same bounds) into this one.
    mutating func add(_ other: Histogram) {
        for index in self.counts.indices { self.counts[index] += other.counts[index] }
        self.sum += other.sum
        self.count += other.count
    }
}
