public import EthicalGateway

/// Configuration of an `http-proxy` backend.
///
/// ```json
/// "api": { "plugin": "http-proxy", "config": {
///     "upstreams": [ { "url": "http://127.0.0.1:9001", "weight": 2 }, { "url": "http://127.0.0.1:9002" } ],
///     "timeouts": { "connectSeconds": 2, "firstByteSeconds": 30 } } }
/// ```
public struct HTTPProxyConfiguration: Decodable, Sendable {
    /// The servers requests are forwarded to. At least one.
    public var upstreams: [UpstreamConfiguration]
    /// How an upstream is picked: `"round-robin"` (weighted, the default) or `"least-request"`
    /// (fewest requests in flight from this event loop, weights as tie-breakers).
    public var loadBalancing: LoadBalancingPolicy
    /// Timeouts; see ``ProxyTimeouts``.
    public var timeouts: ProxyTimeouts
    /// Idle keep-alive connections to the upstreams; see ``ConnectionPoolConfiguration``.
    public var pool: ConnectionPoolConfiguration
    /// Retries on failed connections and chosen statuses; see ``RetryConfiguration``.
    public var retries: RetryConfiguration
    /// What `consistent-hash` balancing hashes; see ``HashKeyConfiguration``. Required with that policy.
    public var hashOn: HashKeyConfiguration?
    /// Header changes on the way to the upstream; see ``HeaderRules``.
    public var requestHeaders: HeaderRules
    /// Header changes on the way back to the client; see ``HeaderRules``.
    public var responseHeaders: HeaderRules
    /// Send the client's `Host` to the upstream (`true`, the default) or the upstream's own host (`false`).
    public var preserveHost: Bool
    /// Addresses (IPs or CIDR ranges such as `"10.0.0.0/8"`) of proxies in front of the gateway.
    /// Only from these are incoming `X-Forwarded-*` and `Forwarded` headers kept and extended;
    /// from anyone else they are replaced. Default `[]`: trust nobody.
    public var trustedProxies: [String]
    /// TLS towards `https://` upstreams; see ``UpstreamTLSConfiguration``.
    public var tls: UpstreamTLSConfiguration
    /// Active health checks; see ``HealthCheckConfiguration``. Default: none.
    public var healthCheck: HealthCheckConfiguration?
    /// Passive outlier ejection; see ``OutlierDetectionConfiguration``. Default: on, with its defaults.
    public var outlierDetection: OutlierDetectionConfiguration

    enum CodingKeys: String, CodingKey {
        case upstreams, loadBalancing, timeouts, pool, retries, preserveHost, trustedProxies, tls
        case healthCheck, outlierDetection, hashOn, requestHeaders, responseHeaders
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.upstreams = try container.decode([UpstreamConfiguration].self, forKey: .upstreams)
        if self.upstreams.isEmpty {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.upstreams],
                    debugDescription: "expected at least one upstream"
                )
            )
        }
        self.loadBalancing =
            try container.decodeIfPresent(LoadBalancingPolicy.self, forKey: .loadBalancing) ?? .roundRobin
        self.timeouts = try container.decodeIfPresent(ProxyTimeouts.self, forKey: .timeouts) ?? ProxyTimeouts()
        self.pool =
            try container.decodeIfPresent(ConnectionPoolConfiguration.self, forKey: .pool)
            ?? ConnectionPoolConfiguration()
        self.retries = try container.decodeIfPresent(RetryConfiguration.self, forKey: .retries) ?? RetryConfiguration()
        self.preserveHost = try container.decodeIfPresent(Bool.self, forKey: .preserveHost) ?? true
        self.trustedProxies = try container.decodeIfPresent([String].self, forKey: .trustedProxies) ?? []
        self.tls =
            try container.decodeIfPresent(UpstreamTLSConfiguration.self, forKey: .tls) ?? UpstreamTLSConfiguration()
        self.healthCheck = try container.decodeIfPresent(HealthCheckConfiguration.self, forKey: .healthCheck)
        self.hashOn = try container.decodeIfPresent(HashKeyConfiguration.self, forKey: .hashOn)
        self.requestHeaders = try container.decodeIfPresent(HeaderRules.self, forKey: .requestHeaders) ?? HeaderRules()
        self.responseHeaders =
            try container.decodeIfPresent(HeaderRules.self, forKey: .responseHeaders) ?? HeaderRules()
        if self.loadBalancing == .consistentHash && self.hashOn == nil {
            throw DecodingError.keyNotFound(
                CodingKeys.hashOn,
                .init(codingPath: container.codingPath, debugDescription: "consistent-hash needs hashOn")
            )
        }
        self.outlierDetection =
            try container.decodeIfPresent(OutlierDetectionConfiguration.self, forKey: .outlierDetection)
            ?? OutlierDetectionConfiguration()
    }
}

/// One upstream server.
public struct UpstreamConfiguration: Decodable, Sendable {
    /// `http://host:port` or `https://host:port`, without a path.
    public var url: String
    /// Relative share of requests under round robin, 1 to 1000. Default 1.
    public var weight: Int

    enum CodingKeys: String, CodingKey { case url, weight }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.url = try container.decode(String.self, forKey: .url)
        self.weight = try container.decodeIfPresent(Int.self, forKey: .weight) ?? 1
        if !(1...1000).contains(self.weight) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.weight],
                    debugDescription: "expected a weight between 1 and 1000"
                )
            )
        }
    }
}

/// The load-balancing policy of an `http-proxy` backend.
public enum LoadBalancingPolicy: String, ConfigEnum {
    case roundRobin = "round-robin"
    case leastRequest = "least-request"
    /// The same key (a header, a cookie or the client's address) always reaches the same
    /// upstream while it is available, so sessions stick.
    case consistentHash = "consistent-hash"
}

/// Timeouts of an `http-proxy` backend, in seconds. Each failure before the response started
/// is answered 504 (timeouts) or 502 (connection failures) with a problem document.
public struct ProxyTimeouts: Decodable, Sendable {
    /// Establishing a connection (TCP and TLS). Default 5.
    public var connectSeconds: Double = 5
    /// From the request's end to the response head. Default 60.
    public var firstByteSeconds: Double = 60
    /// Longest silence between two reads from the upstream while a response streams. Default 60.
    public var idleSeconds: Double = 60
    /// The whole exchange with the upstream. Default: no limit.
    public var requestSeconds: Double?

    public init() {}

    enum CodingKeys: String, CodingKey { case connectSeconds, firstByteSeconds, idleSeconds, requestSeconds }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func positive(_ key: CodingKeys) throws -> Double? {
            guard let value = try container.decodeIfPresent(Double.self, forKey: key) else { return nil }
            guard value > 0, value <= 86400 else {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: container.codingPath + [key],
                        debugDescription: "expected a number of seconds greater than 0 and at most 86400"
                    )
                )
            }
            return value
        }
        self.connectSeconds = try positive(.connectSeconds) ?? self.connectSeconds
        self.firstByteSeconds = try positive(.firstByteSeconds) ?? self.firstByteSeconds
        self.idleSeconds = try positive(.idleSeconds) ?? self.idleSeconds
        self.requestSeconds = try positive(.requestSeconds)
    }
}

/// Keep-alive connections kept per upstream on each event loop.
public struct ConnectionPoolConfiguration: Decodable, Sendable {
    /// Idle connections kept per upstream and event loop. Default 64.
    public var maxIdlePerUpstream: Int = 64
    /// Seconds an idle connection is kept before it is closed. Default 60.
    public var idleTimeoutSeconds: Double = 60

    public init() {}

    enum CodingKeys: String, CodingKey { case maxIdlePerUpstream, idleTimeoutSeconds }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.maxIdlePerUpstream = try container.decodeIfPresent(Int.self, forKey: .maxIdlePerUpstream) ?? 64
        self.idleTimeoutSeconds = try container.decodeIfPresent(Double.self, forKey: .idleTimeoutSeconds) ?? 60
        if self.maxIdlePerUpstream < 0 {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.maxIdlePerUpstream],
                    debugDescription: "expected a number >= 0"
                )
            )
        }
        if self.idleTimeoutSeconds <= 0 {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.idleTimeoutSeconds],
                    debugDescription: "expected seconds > 0"
                )
            )
        }
    }
}

/// Retries of requests whose upstream connection failed before any byte was sent.
public struct RetryConfiguration: Decodable, Sendable {
    /// Further upstreams tried after a failed connection or a status in `onStatuses`, for
    /// requests without a body whose method is idempotent (or that carry an `Idempotency-Key`).
    /// Never once response bytes were sent to the client. Default 2.
    public var attempts: Int = 2
    /// Upstream statuses that are retried on another upstream, e.g. `[502, 503, 504]`. Default `[]`.
    public var onStatuses: [Int] = []
    /// Retries may add at most this percentage to the requests of the last second, so an
    /// outage cannot multiply the load. Default 20.
    public var budgetPercent: Double = 20
    /// Retries always allowed per second and event loop, however little traffic there is.
    /// Default 10 (as Linkerd's retry budget).
    public var minRetriesPerSecond: Int = 10

    public init() {}

    enum CodingKeys: String, CodingKey { case attempts, onStatuses, budgetPercent, minRetriesPerSecond }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func fail(_ key: CodingKeys, _ message: String) -> DecodingError {
            DecodingError.dataCorrupted(.init(codingPath: container.codingPath + [key], debugDescription: message))
        }
        self.attempts = try container.decodeIfPresent(Int.self, forKey: .attempts) ?? 2
        self.onStatuses = try container.decodeIfPresent([Int].self, forKey: .onStatuses) ?? []
        self.budgetPercent = try container.decodeIfPresent(Double.self, forKey: .budgetPercent) ?? 20
        self.minRetriesPerSecond = try container.decodeIfPresent(Int.self, forKey: .minRetriesPerSecond) ?? 10
        guard (0...10).contains(self.attempts) else { throw fail(.attempts, "expected 0 to 10 attempts") }
        for (offset, status) in self.onStatuses.enumerated() where !(500...599).contains(status) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.onStatuses, AnyCodingKeyIndex(offset)],
                    debugDescription: "expected a 5xx status, found \(status)"
                )
            )
        }
        guard (0...100).contains(self.budgetPercent) else { throw fail(.budgetPercent, "expected 0 to 100") }
        guard (0...1000).contains(self.minRetriesPerSecond) else {
            throw fail(.minRetriesPerSecond, "expected 0 to 1000")
        }
    }
}

/// The key `consistent-hash` balancing hashes: exactly one of `header`, `cookie` or `clientAddress`.
/// Requests without the key are balanced round robin.
public struct HashKeyConfiguration: Decodable, Sendable {
    /// Hash the value of this request header, e.g. `"X-User-ID"`.
    public var header: String?
    /// Hash the value of this cookie, e.g. `"session"`.
    public var cookie: String?
    /// Hash the client's IP address.
    public var clientAddress: Bool?

    enum CodingKeys: String, CodingKey { case header, cookie, clientAddress }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.header = try container.decodeIfPresent(String.self, forKey: .header)
        self.cookie = try container.decodeIfPresent(String.self, forKey: .cookie)
        self.clientAddress = try container.decodeIfPresent(Bool.self, forKey: .clientAddress)
        let chosen = [self.header != nil, self.cookie != nil, self.clientAddress == true].filter { $0 }.count
        guard chosen == 1 else {
            throw decoder.invalid("expected exactly one of \"header\", \"cookie\" or \"clientAddress\": true")
        }
    }
}

/// Header changes: `set` replaces (or adds), `add` appends, `remove` deletes; applied in that
/// order after the gateway's own forwarding headers.
public struct HeaderRules: Decodable, Sendable {
    /// Headers set to these values, replacing any present.
    public var set: [String: String] = [:]
    /// Headers added, keeping any present.
    public var add: [String: String] = [:]
    /// Header names removed.
    public var remove: [String] = []

    public init() {}

    /// Whether the rules change anything.
    public var isEmpty: Bool { self.set.isEmpty && self.add.isEmpty && self.remove.isEmpty }

    enum CodingKeys: String, CodingKey { case set, add, remove }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.set = try container.decodeIfPresent([String: String].self, forKey: .set) ?? [:]
        self.add = try container.decodeIfPresent([String: String].self, forKey: .add) ?? [:]
        self.remove = try container.decodeIfPresent([String].self, forKey: .remove) ?? []
        for (key, values) in [(CodingKeys.set, self.set), (CodingKeys.add, self.add)] {
            for (name, value) in values
            where !isToken(name) || value.utf8.contains(where: { $0 < 0x20 && $0 != 0x09 || $0 == 0x7F }) {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: container.codingPath + [key],
                        debugDescription: "\"\(name)\" is not a valid header name with a valid value"
                    )
                )
            }
        }
        for name in self.remove where !isToken(name) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.remove],
                    debugDescription: "\"\(name)\" is not a valid header name"
                )
            )
        }
    }
}

/// An array position as a coding key, for error paths.
struct AnyCodingKeyIndex: CodingKey {
    var stringValue: String { "\(self.intValue!)" }
    var intValue: Int?
    init(_ index: Int) { self.intValue = index }
    init?(stringValue: String) { return nil }
    init?(intValue: Int) { self.intValue = intValue }
}

/// Whether `string` is an RFC 9110 token (header-name syntax).
func isToken(_ string: String) -> Bool {
    let extras = "!#$%&'*+-.^_`|~".utf8
    return !string.isEmpty
        && string.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || extras.contains($0)
        }
}

/// How the proxy verifies `https://` upstreams.
public struct UpstreamTLSConfiguration: Decodable, Sendable {
    /// PEM file of the certificate authorities to trust instead of the system's. Relative to the config.
    public var caFile: String?
    /// Name sent as SNI and checked against the certificate. Default: the upstream URL's host.
    public var serverName: String?
    /// Verify the upstream's certificate. Default `true`; `false` is for development only.
    public var verify: Bool = true

    public init() {}

    enum CodingKeys: String, CodingKey { case caFile, serverName, verify }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.caFile = try container.decodeIfPresent(String.self, forKey: .caFile)
        self.serverName = try container.decodeIfPresent(String.self, forKey: .serverName)
        self.verify = try container.decodeIfPresent(Bool.self, forKey: .verify) ?? true
    }
}
