/// Active health checks: each upstream is asked for `path` every `intervalSeconds`; a 2xx or
/// 3xx answer within `timeoutSeconds` counts as healthy.
public struct HealthCheckConfiguration: Decodable, Sendable {
    /// Path requested, e.g. `"/healthz"`.
    public var path: String
    /// Seconds between checks. Default 5.
    public var intervalSeconds: Double = 5
    /// Seconds a check may take. Default 2.
    public var timeoutSeconds: Double = 2
    /// Consecutive good checks that readmit an unhealthy upstream. Default 2.
    public var healthyThreshold: Int = 2
    /// Consecutive failed checks that take an upstream out of rotation. Default 3.
    public var unhealthyThreshold: Int = 3

    enum CodingKeys: String, CodingKey {
        case path, intervalSeconds, timeoutSeconds, healthyThreshold, unhealthyThreshold
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func fail(_ key: CodingKeys, _ message: String) -> DecodingError {
            DecodingError.dataCorrupted(.init(codingPath: container.codingPath + [key], debugDescription: message))
        }
        self.path = try container.decode(String.self, forKey: .path)
        guard self.path.hasPrefix("/") else { throw fail(.path, "expected a path starting with \"/\"") }
        self.intervalSeconds = try container.decodeIfPresent(Double.self, forKey: .intervalSeconds) ?? 5
        self.timeoutSeconds = try container.decodeIfPresent(Double.self, forKey: .timeoutSeconds) ?? 2
        self.healthyThreshold = try container.decodeIfPresent(Int.self, forKey: .healthyThreshold) ?? 2
        self.unhealthyThreshold = try container.decodeIfPresent(Int.self, forKey: .unhealthyThreshold) ?? 3
        guard self.intervalSeconds > 0, self.intervalSeconds <= 86400 else {
            throw fail(.intervalSeconds, "expected seconds greater than 0 and at most 86400")
        }
        guard self.timeoutSeconds > 0, self.timeoutSeconds <= 86400 else {
            throw fail(.timeoutSeconds, "expected seconds greater than 0 and at most 86400")
        }
        guard (1...100).contains(self.healthyThreshold) else { throw fail(.healthyThreshold, "expected 1 to 100") }
        guard (1...100).contains(self.unhealthyThreshold) else { throw fail(.unhealthyThreshold, "expected 1 to 100") }
    }
}

/// Passive outlier ejection: an upstream that fails `consecutiveFailures` requests in a row
/// (connection refused or reset, closed without a response, timeouts) is taken out of rotation
/// on that event loop for `baseEjectionSeconds`, doubled on each further ejection up to
/// `maxEjectionSeconds`. A malformed response is not counted: the upstream is reachable. When
/// every upstream a request may use is ejected, ejection is ignored for it (panic routing).
public struct OutlierDetectionConfiguration: Decodable, Sendable {
    /// Consecutive failures that eject an upstream; 0 turns ejection off. Default 5.
    public var consecutiveFailures: Int = 5
    /// First ejection, in seconds. Default 10.
    public var baseEjectionSeconds: Double = 10
    /// Longest ejection, in seconds. Default 300.
    public var maxEjectionSeconds: Double = 300

    public init() {}

    enum CodingKeys: String, CodingKey { case consecutiveFailures, baseEjectionSeconds, maxEjectionSeconds }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func fail(_ key: CodingKeys, _ message: String) -> DecodingError {
            DecodingError.dataCorrupted(.init(codingPath: container.codingPath + [key], debugDescription: message))
        }
        self.consecutiveFailures = try container.decodeIfPresent(Int.self, forKey: .consecutiveFailures) ?? 5
        self.baseEjectionSeconds = try container.decodeIfPresent(Double.self, forKey: .baseEjectionSeconds) ?? 10
        self.maxEjectionSeconds = try container.decodeIfPresent(Double.self, forKey: .maxEjectionSeconds) ?? 300
        guard (0...1000).contains(self.consecutiveFailures) else {
            throw fail(.consecutiveFailures, "expected 0 to 1000")
        }
        guard self.baseEjectionSeconds > 0, self.baseEjectionSeconds <= 86400 else {
            throw fail(.baseEjectionSeconds, "expected seconds greater than 0 and at most 86400")
        }
        guard self.maxEjectionSeconds >= self.baseEjectionSeconds, self.maxEjectionSeconds <= 86400 else {
            throw fail(.maxEjectionSeconds, "expected seconds between baseEjectionSeconds and 86400")
        }
    }
}
