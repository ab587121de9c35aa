/// A route's authentication policy: which issuers' tokens it accepts, what they must grant,
/// and which verified claims reach the backend.
///
/// ```json
/// "auth": { "issuers": ["corp"], "scopes": ["orders:read"],
///           "claims": { "org.tier": { "oneOf": ["gold", "silver"] } },
///           "claimHeaders": { "X-User": "sub", "X-Roles": "realm_access.roles" } }
/// ```
public struct RouteAuthConfiguration: Sendable, Decodable {
    /// Names of issuers (under the top-level `issuers`) whose tokens this route accepts. Required.
    public var issuers: [String]
    /// `true`: requests without a token are let through (without claim headers); a token that
    /// is present must still be valid. Default `false`.
    public var anonymous: Bool
    /// Scopes the token must grant, all of them (from `scope`, space-delimited, or `scp`, an
    /// array). Missing: 403 `insufficient_scope`. Default `[]`.
    public var scopes: [String]
    /// Claim rules by claim name (dots reach into objects: `"org.tier"`); all must hold.
    /// Default `{}`.
    public var claims: [String: ClaimRule]
    /// Name of a cookie that may carry the token when there is no `Authorization` header.
    /// Default: cookies are not read.
    public var cookie: String?
    /// Name of a query parameter that may carry the token when neither the header nor the
    /// cookie does: for WebSocket clients in browsers, which cannot set headers. The parameter
    /// is removed before the request reaches the backend and never logged. Default: not read.
    public var queryParameter: String?
    /// Headers set on the request to the backend from verified claims: header name to claim
    /// name (dots reach into objects). Arrays become comma-separated lists, objects JSON. Clients'
    /// own values of these headers are always removed. Default `{}`.
    public var claimHeaders: [String: String]
    /// A header that carries the whole verified payload (base64url JSON) to the backend; also
    /// removed when clients send it. Default: not sent.
    public var payloadHeader: String?
    /// `false`: remove the `Authorization` header (and the token cookie stays) before the
    /// request reaches the backend. Default `true`.
    public var forwardAuthorization: Bool
    /// The `realm` in `WWW-Authenticate` challenges. Default `"ethical-gateway"`.
    public var realm: String

    enum CodingKeys: String, CodingKey {
        case issuers, anonymous, scopes, claims, cookie, queryParameter, claimHeaders, payloadHeader,
            forwardAuthorization
        case realm
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func fail(_ path: [any CodingKey], _ message: String) -> DecodingError {
            DecodingError.dataCorrupted(.init(codingPath: container.codingPath + path, debugDescription: message))
        }
        self.issuers = try container.decode([String].self, forKey: .issuers)
        if self.issuers.isEmpty {
            throw fail([CodingKeys.issuers], "expected at least one issuer name (declared under \"issuers\")")
        }
        self.anonymous = try container.decodeIfPresent(Bool.self, forKey: .anonymous) ?? false
        self.scopes = try container.decodeIfPresent([String].self, forKey: .scopes) ?? []
        for (offset, scope) in self.scopes.enumerated() where scope.isEmpty || scope.contains(" ") {
            throw fail(
                [CodingKeys.scopes, AnyCodingKey(index: offset)],
                "expected a scope without spaces, found \"\(scope)\""
            )
        }
        self.claims = try container.decodeIfPresent([String: ClaimRule].self, forKey: .claims) ?? [:]
        self.cookie = try container.decodeIfPresent(String.self, forKey: .cookie)
        if let cookie = self.cookie, !isHTTPToken(cookie) {
            throw fail([CodingKeys.cookie], "\"\(cookie)\" is not a valid cookie name")
        }
        self.queryParameter = try container.decodeIfPresent(String.self, forKey: .queryParameter)
        if let name = self.queryParameter, name.isEmpty || name.contains(where: { "&=#? ".contains($0) }) {
            throw fail([CodingKeys.queryParameter], "\"\(name)\" is not a usable query parameter name")
        }
        self.claimHeaders = try container.decodeIfPresent([String: String].self, forKey: .claimHeaders) ?? [:]
        for (header, claim) in self.claimHeaders {
            if !isHTTPToken(header) {
                throw fail([CodingKeys.claimHeaders, AnyCodingKey(header)], "\"\(header)\" is not a valid header name")
            }
            if claim.isEmpty {
                throw fail([CodingKeys.claimHeaders, AnyCodingKey(header)], "expected a claim name such as \"sub\"")
            }
            if header.lowercased() == "authorization" || header.lowercased() == "host" {
                throw fail([CodingKeys.claimHeaders, AnyCodingKey(header)], "\(header) cannot carry a claim")
            }
        }
        self.payloadHeader = try container.decodeIfPresent(String.self, forKey: .payloadHeader)
        if let header = self.payloadHeader, !isHTTPToken(header) {
            throw fail([CodingKeys.payloadHeader], "\"\(header)\" is not a valid header name")
        }
        self.forwardAuthorization = try container.decodeIfPresent(Bool.self, forKey: .forwardAuthorization) ?? true
        self.realm = try container.decodeIfPresent(String.self, forKey: .realm) ?? "ethical-gateway"
        if self.realm.contains("\"") || self.realm.contains("\\") || self.realm.utf8.contains(where: { $0 < 0x20 }) {
            throw fail([CodingKeys.realm], "expected a realm without quotes, backslashes or control characters")
        }
    }
}

/// A condition on one claim. Exactly one of `equals`, `contains` and `oneOf` is given.
///
/// `{ "equals": "acme" }`, `{ "contains": "admin" }` (the claim is an array holding the value,
/// or a space-delimited string holding the word), `{ "oneOf": ["gold", "silver"] }`.
public enum ClaimRule: Sendable, Decodable, Equatable {
    /// The claim equals this JSON value.
    case equals(JSONValue)
    /// The claim is an array containing this value, or a space-delimited string with this word.
    case contains(JSONValue)
    /// The claim equals one of these values.
    case oneOf([JSONValue])

    enum CodingKeys: String, CodingKey { case equals, contains, oneOf }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let equals = try container.decodeIfPresent(JSONValue.self, forKey: .equals)
        let contains = try container.decodeIfPresent(JSONValue.self, forKey: .contains)
        let oneOf = try container.decodeIfPresent([JSONValue].self, forKey: .oneOf)
        switch (equals, contains, oneOf) {
        case (.some(let value), nil, nil): self = .equals(value)
        case (nil, .some(let value), nil): self = .contains(value)
        case (nil, nil, .some(let values)):
            if values.isEmpty {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: container.codingPath + [CodingKeys.oneOf],
                        debugDescription: "expected at least one value"
                    )
                )
            }
            self = .oneOf(values)
        default:
            throw decoder.invalid("expected exactly one of \"equals\", \"contains\" or \"oneOf\"")
        }
    }
}
