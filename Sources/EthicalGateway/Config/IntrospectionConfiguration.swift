/// OAuth2 token introspection (RFC 7662) for an issuer's opaque (non-JWT) tokens.
///
/// ```json
/// "introspection": { "url": "https://login.example.com/oauth2/introspect",
///                    "clientID": "gateway", "clientSecretFile": "secrets/introspection" }
/// ```
public struct IntrospectionConfiguration: Sendable, Decodable {
    /// HTTPS URL of the introspection endpoint. Required.
    public var url: String
    /// Client id the gateway authenticates with (HTTP Basic). Required.
    public var clientID: String
    /// The client secret, inline. Give this or `clientSecretFile`.
    public var clientSecret: String?
    /// A file holding the client secret (relative to the configuration file; surrounding
    /// whitespace is ignored). Give this or `clientSecret`.
    public var clientSecretFile: String?
    /// Longest time an active token's introspection result is reused (never past its `exp`).
    /// Default 300.
    public var maxCacheSeconds: Double
    /// How long a token the endpoint called inactive is refused without asking again, so a
    /// client repeating a bad token cannot make the gateway call the IdP per request.
    /// Default 60.
    public var refusalCacheSeconds: Double
    /// Most introspection calls in flight at once for this issuer; past it, requests with
    /// unknown opaque tokens get 503 at once instead of queueing up at the IdP. Concurrent
    /// requests with the same token always share one call. Default 64.
    public var maxConcurrentCalls: Int

    enum CodingKeys: String, CodingKey {
        case url, clientID, clientSecret, clientSecretFile, maxCacheSeconds, refusalCacheSeconds, maxConcurrentCalls
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func fail(_ key: CodingKeys, _ message: String) -> DecodingError {
            DecodingError.dataCorrupted(.init(codingPath: container.codingPath + [key], debugDescription: message))
        }
        self.url = try container.decode(String.self, forKey: .url)
        if HTTPSURL(self.url) == nil { throw fail(.url, "expected an https:// URL, found \"\(self.url)\"") }
        self.clientID = try container.decode(String.self, forKey: .clientID)
        if self.clientID.isEmpty { throw fail(.clientID, "expected the gateway's client id") }
        self.clientSecret = try container.decodeIfPresent(String.self, forKey: .clientSecret)
        self.clientSecretFile = try container.decodeIfPresent(String.self, forKey: .clientSecretFile)
        if (self.clientSecret == nil) == (self.clientSecretFile == nil) {
            throw decoder.invalid("expected exactly one of \"clientSecret\" and \"clientSecretFile\"")
        }
        self.maxCacheSeconds = try container.decodeIfPresent(Double.self, forKey: .maxCacheSeconds) ?? 300
        if self.maxCacheSeconds < 0 { throw fail(.maxCacheSeconds, "expected a number of seconds >= 0") }
        self.refusalCacheSeconds = try container.decodeIfPresent(Double.self, forKey: .refusalCacheSeconds) ?? 60
        if self.refusalCacheSeconds < 0 { throw fail(.refusalCacheSeconds, "expected a number of seconds >= 0") }
        self.maxConcurrentCalls = try container.decodeIfPresent(Int.self, forKey: .maxConcurrentCalls) ?? 64
        if self.maxConcurrentCalls < 1 { throw fail(.maxConcurrentCalls, "expected a number >= 1") }
    }
}
