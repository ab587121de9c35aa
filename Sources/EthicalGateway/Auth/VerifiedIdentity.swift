extension JSONValue {
    /// A claim by name; a name with dots reaches into objects when no top-level claim has it.
    static func claim(_ name: String, in claims: [String: JSONValue]) -> JSONValue? {
        if let direct = claims[name] { return direct }
        var current: JSONValue? = .object(claims)
        for part in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard case .object(let members)? = current else { return nil }
            current = members[String(part)]
        }
        return current
    }
}

/// Who a request or a relay connection speaks for: the claims of a token the gateway verified.
///
/// Backends find it on ``GatewayRequest/identity`` when the route has `auth`, and get it from
/// ``TokenVerifier`` for tokens that arrive inside a protocol (a relay `connect` or `refresh`).
public struct VerifiedIdentity: Sendable {
    /// The issuer's name under `issuers` in the configuration.
    public let issuerName: String
    /// The `sub` claim, if the token has one.
    public let subject: String?
    /// Every claim of the token (or of the introspection answer).
    public let claims: [String: JSONValue]
    /// Scopes granted by `scope` (space-delimited) and `scp`.
    public let scopes: Set<String>
    /// The token's `exp` in seconds since 1970 (without the issuer's leeway); the identity must
    /// not be used after it.
    public let expiresAt: Double

    init(_ token: VerifiedToken) {
        self.issuerName = token.issuerName
        self.subject = token.claims["sub"]?.stringValue
        self.claims = token.claims
        self.scopes = token.scopes
        if case .number(let exp)? = token.claims["exp"] {
            self.expiresAt = min(exp, token.expiresAt)
        } else {
            self.expiresAt = token.expiresAt
        }
    }

    /// A claim by name; a name with dots reaches into objects when no top-level claim has it.
    public func claim(_ name: String) -> JSONValue? {
        JSONValue.claim(name, in: self.claims)
    }
}
