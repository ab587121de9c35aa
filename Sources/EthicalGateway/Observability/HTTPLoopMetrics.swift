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

    /// One route's counts and histograms.
    private final class RouteRecord {
        var requests: [MethodAndCode: Int] = [:]
        var durations = Histogram(bounds: HTTPMetricsSnapshot.durationBuckets)
        var requestSizes = Histogram(bounds: HTTPMetricsSnapshot.sizeBuckets)
        var responseSizes = Histogram(bounds: HTTPMetricsSnapshot.sizeBuckets)
    }

    private struct MethodAndCode: Hashable {
        var method: String
        var code: UInt
    }

    /// Only on the owning loop. By route, so a request hashes its route's name once (four
    /// dictionaries keyed by it cost four hashes of the name per request).
    private var routes: [String: RouteRecord] = [:]

    /// Requests by route, method and status code (read when `/metrics` is scraped).
    var requests: [RequestKey: Int] {
        var result: [RequestKey: Int] = [:]
        for (route, record) in self.routes {
            for (key, count) in record.requests {
                result[RequestKey(route: route, method: key.method, code: key.code)] = count
            }
        }
        return result
    }
    var durations: [String: Histogram] { self.routes.mapValues(\.durations) }
    var requestSizes: [String: Histogram] { self.routes.mapValues(\.requestSizes) }
    var responseSizes: [String: Histogram] { self.routes.mapValues(\.responseSizes) }

    /// One finished exchange. `route` is `none` for requests no route took (404, 400, 431...).
    func record(route: String, method: HTTPMethod, code: UInt, seconds: Double, requestBytes: Int, responseBytes: Int) {
        let record: RouteRecord
        if let existing = self.routes[route] {
            record = existing
        } else {
            record = RouteRecord()
            self.routes[route] = record
        }
        record.requests[MethodAndCode(method: Self.label(method), code: code), default: 0] += 1
        record.durations.observe(seconds)
        record.requestSizes.observe(Double(requestBytes))
        record.responseSizes.observe(Double(responseBytes))
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
