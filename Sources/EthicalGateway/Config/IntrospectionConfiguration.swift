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

    enum CodingKeys: String, CodingKey { case url, clientID, clientSecret, clientSecretFile, maxCacheSeconds }

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
    }
}
