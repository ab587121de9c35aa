/// Every event loop's ``HTTPLoopMetrics`` added up, written in the Prometheus text format:
/// `gateway_http_requests_total{route,method,code}`,
/// `gateway_http_request_duration_seconds{route}`, `gateway_http_request_size_bytes{route}` and
/// `gateway_http_response_size_bytes{route}`.
public struct HTTPMetricsSnapshot: Sendable {
    /// Seconds: 1 ms to 10 s.
    public static let durationBuckets: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]
    /// Bytes: 100 B to 100 MB.
    static let sizeBuckets: [Double] = [100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000]

    var requests: [HTTPLoopMetrics.RequestKey: Int] = [:]
    var durations: [String: Histogram] = [:]
    var requestSizes: [String: Histogram] = [:]
    var responseSizes: [String: Histogram] = [:]

    init() {}

    /// A copy of one loop's metrics; call on that loop.
    init(adding loop: HTTPLoopMetrics) {
        self.requests = loop.requests
        self.durations = loop.durations
        self.requestSizes = loop.requestSizes
        self.responseSizes = loop.responseSizes
    }

    /// Adds another loop's copy.
    mutating func add(_ other: HTTPMetricsSnapshot) {
        self.requests.merge(other.requests, uniquingKeysWith: +)
        for (route, histogram) in other.durations { self.durations[route, default: histogram.emptyCopy].add(histogram) }
        for (route, histogram) in other.requestSizes {
            self.requestSizes[route, default: histogram.emptyCopy].add(histogram)
        }
        for (route, histogram) in other.responseSizes {
            self.responseSizes[route, default: histogram.emptyCopy].add(histogram)
        }
    }

    /// The four families in the Prometheus text exposition format (0.0.4), sorted by labels.
    var text: String {
        var text = """
            # HELP gateway_http_requests_total HTTP requests answered, by route (none: no route took it), method and status code (499: the client left first).
            # TYPE gateway_http_requests_total counter

            """
        for (key, count) in self.requests.sorted(by: {
            ($0.key.route, $0.key.method, $0.key.code) < ($1.key.route, $1.key.method, $1.key.code)
        }) {
            text +=
                "gateway_http_requests_total{route=\(Self.quoted(key.route)),method=\(Self.quoted(key.method)),code=\"\(key.code)\"} \(count)\n"
        }
        Self.write(
            "gateway_http_request_duration_seconds",
            help: "Time from the request head to the end of the response, by route.",
            self.durations,
            into: &text
        )
        Self.write(
            "gateway_http_request_size_bytes",
            help: "Request body bytes, by route.",
            self.requestSizes,
            into: &text
        )
        Self.write(
            "gateway_http_response_size_bytes",
            help: "Response body bytes, by route.",
            self.responseSizes,
            into: &text
        )
        return text
    }

    private static func write(_ name: String, help: String, _ histograms: [String: Histogram], into text: inout String)
    {
        text += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (route, histogram) in histograms.sorted(by: { $0.key < $1.key }) {
            Self.write(name, labels: "route=\(Self.quoted(route))", histogram, into: &text)
        }
    }

    /// One series of a histogram family: its cumulative buckets, sum and count.
    static func write(_ name: String, labels: String, _ histogram: Histogram, into text: inout String) {
        var cumulative = 0
        for (index, bound) in histogram.bounds.enumerated() {
            cumulative += histogram.counts[index]
            text += "\(name)_bucket{\(labels),le=\"\(Self.number(bound))\"} \(cumulative)\n"
        }
        text += "\(name)_bucket{\(labels),le=\"+Inf\"} \(histogram.count)\n"
        text += "\(name)_sum{\(labels)} \(Self.number(histogram.sum))\n"
        text += "\(name)_count{\(labels)} \(histogram.count)\n"
    }

    /// A label value in quotes, escaped as the format requires (backslash, quote, newline).
    static func quoted(_ value: String) -> String {
        var escaped = "\""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped + "\""
    }

    static func number(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }
}

extension Histogram {
    /// A histogram with the same bounds and nothing observed.
    var emptyCopy: Histogram { Histogram(bounds: self.bounds) }
}
