/// A token issuer (an OAuth2 authorization server or OpenID provider) whose JWTs routes accept.
///
/// Issuers are declared once under the top-level `issuers` object and referenced by name from
/// a route's `auth` policy. Exactly one key source is given: `jwksURL`, `openIDDiscovery`,
/// `jwksFile`, `keys` or `development`.
///
/// ```json
/// "issuers": {
///   "corp": { "issuer": "https://login.example.com/", "audiences": ["api"],
///             "jwksURL": "https://login.example.com/keys", "algorithms": ["RS256", "ES256"] }
/// }
/// ```
public struct IssuerConfiguration: Sendable, Decodable {
    /// The exact `iss` claim this issuer's tokens carry. Required.
    public var issuer: String
    /// Accepted `aud` values: a token must name at least one of them. Required, not empty.
    public var audiences: [String]
    /// HTTPS URL of the issuer's JSON Web Key Set, fetched and cached by the gateway.
    public var jwksURL: String?
    /// `true`: find the JWKS URL in `<issuer>/.well-known/openid-configuration` (OpenID
    /// Connect Discovery) instead of giving `jwksURL`. Default `false`.
    public var openIDDiscovery: Bool
    /// A JWKS file (relative to the configuration file), read when the configuration is loaded.
    public var jwksFile: String?
    /// Inline JSON Web Keys (the `keys` array of a JWKS). `oct` keys (`k`) are HMAC secrets.
    public var keys: [JSONValue]?
    /// `true`: a local development issuer whose ES256 key the gateway makes and keeps in
    /// `stateDirectory`; `ethical-gateway dev-token` signs tokens with it. Default `false`.
    public var development: Bool
    /// Algorithms accepted from this issuer. Default: every asymmetric one (`RS256`, `RS384`,
    /// `RS512`, `PS256`, `PS384`, `PS512`, `ES256`, `ES384`, `ES512`, `EdDSA`). `HS256`,
    /// `HS384` and `HS512` must be listed explicitly and only work with `keys` or `jwksFile`.
    public var algorithms: [JWTAlgorithmName]
    /// Seconds of clock difference tolerated for `exp`, `nbf` and `iat`. Default 30.
    public var leewaySeconds: Double
    /// Longest accepted token lifetime (`exp` minus `iat`) in seconds. Default: no limit.
    public var maxLifetimeSeconds: Double?
    /// Required `typ` header, e.g. `"at+jwt"` (RFC 9068); `application/` prefix and case are
    /// ignored. Default: any `typ`.
    public var requiredType: String?
    /// Longest accepted token in bytes; longer tokens are refused unparsed. Default 8192.
    public var maxTokenBytes: Int
    /// PEM file of certificates trusted for `jwksURL`, discovery and introspection, instead of
    /// the system's trust store. Default: the system's.
    public var caFile: String?
    /// Shortest time a fetched key set is cached, whatever `Cache-Control` says. Default 60.
    public var jwksMinCacheSeconds: Double
    /// Longest time a fetched key set is cached before it is fetched again. Default 86400.
    public var jwksMaxCacheSeconds: Double
    /// Minimum seconds between two fetches caused by tokens with an unknown `kid` (so a flood
    /// of random `kid`s cannot hammer the issuer), and between retries after a failed fetch.
    /// Default 30.
    public var jwksRefetchIntervalSeconds: Double
    /// Seconds a key set, discovery or introspection request may take. Default 5.
    public var fetchTimeoutSeconds: Double
    /// Token introspection (RFC 7662) for opaque tokens. With it, a key source is optional.
    public var introspection: IntrospectionConfiguration?

    /// The issuer's name under `issuers`.
    public internal(set) var name: String = ""

    public var jsonPath: String { "$.issuers.\(self.name)" }

    /// Whether keys come from the network (a JWKS URL or OpenID discovery).
    var hasKeySourceFromNetwork: Bool { self.jwksURL != nil || self.openIDDiscovery }

    static let defaultAlgorithms: [JWTAlgorithmName] = JWTAlgorithmName.allCases.filter { !$0.isHMAC }

    enum CodingKeys: String, CodingKey {
        case issuer, audiences, jwksURL, openIDDiscovery, jwksFile, keys, development, algorithms, leewaySeconds
        case maxLifetimeSeconds, requiredType, maxTokenBytes, caFile, jwksMinCacheSeconds, jwksMaxCacheSeconds
        case jwksRefetchIntervalSeconds, fetchTimeoutSeconds, introspection
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func fail(_ key: CodingKeys, _ message: String) -> DecodingError {
            DecodingError.dataCorrupted(.init(codingPath: container.codingPath + [key], debugDescription: message))
        }
        func seconds(_ key: CodingKeys, _ fallback: Double, allowZero: Bool = false) throws -> Double {
            guard let value = try container.decodeIfPresent(Double.self, forKey: key) else { return fallback }
            guard value > 0 || (allowZero && value == 0) else {
                throw fail(key, allowZero ? "expected a number of seconds >= 0" : "expected a number of seconds > 0")
            }
            return value
        }
        self.name = decoder.codingPath.last?.stringValue ?? ""
        self.issuer = try container.decode(String.self, forKey: .issuer)
        if self.issuer.isEmpty { throw fail(.issuer, "expected the issuer's \"iss\" value, found an empty string") }
        self.audiences = try container.decode([String].self, forKey: .audiences)
        if self.audiences.isEmpty || self.audiences.contains("") {
            throw fail(.audiences, "expected at least one non-empty audience (the \"aud\" value tokens must carry)")
        }
        self.jwksURL = try container.decodeIfPresent(String.self, forKey: .jwksURL)
        self.openIDDiscovery = try container.decodeIfPresent(Bool.self, forKey: .openIDDiscovery) ?? false
        self.jwksFile = try container.decodeIfPresent(String.self, forKey: .jwksFile)
        self.keys = try container.decodeIfPresent([JSONValue].self, forKey: .keys)
        self.development = try container.decodeIfPresent(Bool.self, forKey: .development) ?? false
        let sources = [
            self.jwksURL != nil ? "jwksURL" : nil, self.openIDDiscovery ? "openIDDiscovery" : nil,
            self.jwksFile != nil ? "jwksFile" : nil, self.keys != nil ? "keys" : nil,
            self.development ? "development" : nil,
        ].compactMap { $0 }
        self.introspection = try container.decodeIfPresent(IntrospectionConfiguration.self, forKey: .introspection)
        if sources.count > 1 || (sources.isEmpty && self.introspection == nil) {
            throw decoder.invalid(
                sources.isEmpty
                    ? "expected one key source: \"jwksURL\", \"openIDDiscovery\": true, \"jwksFile\", \"keys\" "
                        + "or \"development\": true"
                    : "expected one key source, found \(sources.map { "\"\($0)\"" }.joined(separator: " and "))"
            )
        }
        if let url = self.jwksURL, HTTPSURL(url) == nil {
            throw fail(.jwksURL, "expected an https:// URL, found \"\(url)\"")
        }
        if self.openIDDiscovery, HTTPSURL(self.issuer) == nil {
            throw fail(.openIDDiscovery, "OpenID discovery needs an https:// \"issuer\", found \"\(self.issuer)\"")
        }
        self.algorithms =
            try container.decodeIfPresent([JWTAlgorithmName].self, forKey: .algorithms)
            ?? Self.defaultAlgorithms
        if self.algorithms.isEmpty {
            throw fail(.algorithms, "expected at least one algorithm, or leave \"algorithms\" out for the default")
        }
        if self.development && !self.algorithms.contains(.es256) {
            throw fail(.algorithms, "the development issuer signs with ES256, which must be allowed")
        }
        if self.jwksURL != nil || self.openIDDiscovery, let hmac = self.algorithms.first(where: \.isHMAC) {
            throw fail(
                .algorithms,
                "\(hmac.rawValue) uses a shared secret, which is never taken from the network; "
                    + "give HMAC keys in \"keys\" or \"jwksFile\""
            )
        }
        self.leewaySeconds = try seconds(.leewaySeconds, 30, allowZero: true)
        self.maxLifetimeSeconds = try container.decodeIfPresent(Double.self, forKey: .maxLifetimeSeconds)
        if let lifetime = self.maxLifetimeSeconds, lifetime <= 0 {
            throw fail(.maxLifetimeSeconds, "expected a number of seconds > 0")
        }
        self.requiredType = try container.decodeIfPresent(String.self, forKey: .requiredType)
        self.maxTokenBytes = try container.decodeIfPresent(Int.self, forKey: .maxTokenBytes) ?? 8192
        if self.maxTokenBytes < 64 { throw fail(.maxTokenBytes, "expected a number of bytes >= 64") }
        self.caFile = try container.decodeIfPresent(String.self, forKey: .caFile)
        if self.caFile != nil && self.jwksURL == nil && !self.openIDDiscovery && self.introspection == nil {
            throw fail(.caFile, "only used with \"jwksURL\", \"openIDDiscovery\" or \"introspection\"")
        }
        let minCache = try seconds(.jwksMinCacheSeconds, 60)
        let maxCache = try seconds(.jwksMaxCacheSeconds, 86400)
        if maxCache < minCache {
            throw fail(.jwksMaxCacheSeconds, "expected a number >= jwksMinCacheSeconds (\(minCache))")
        }
        self.jwksMinCacheSeconds = minCache
        self.jwksMaxCacheSeconds = maxCache
        self.jwksRefetchIntervalSeconds = try seconds(.jwksRefetchIntervalSeconds, 30, allowZero: true)
        self.fetchTimeoutSeconds = try seconds(.fetchTimeoutSeconds, 5)
    }
}

/// An `https://` URL split into what a connection needs.
struct HTTPSURL: Sendable, Equatable {
    var host: String
    var port: Int
    /// Path and query, at least `/`.
    var target: String

    init?(_ string: String) {
        guard string.lowercased().hasPrefix("https://") else { return nil }
        let rest = string.dropFirst("https://".count)
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if let fragment = target.firstIndex(of: "#") { target = String(target[..<fragment]) }
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            self.host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.isEmpty {
                self.port = 443
            } else {
                guard after.hasPrefix(":"), let port = Int(after.dropFirst()), (1...65535).contains(port) else {
                    return nil
                }
                self.port = port
            }
        } else if let colon = authority.lastIndex(of: ":") {
            guard let port = Int(authority[authority.index(after: colon)...]), (1...65535).contains(port) else {
                return nil
            }
            self.host = String(authority[..<colon])
            self.port = port
        } else {
            self.host = String(authority)
            self.port = 443
        }
        guard !self.host.isEmpty else { return nil }
        self.target = target
    }
}
