import Foundation
import JWTKit

/// A token whose signature and registered claims were checked: what the per-loop cache keeps
/// and what route policies decide on.
struct VerifiedToken: Sendable {
    /// The issuer's name under `issuers`.
    let issuerName: String
    /// The `iss` value of the issuer that verified it (its configuration's `issuer`).
    let issuerIdentifier: String
    /// Whether the issuer's introspection endpoint vouched for it (an opaque token), rather
    /// than its signature.
    let introspected: Bool
    let claims: [String: JSONValue]
    /// `exp`, in seconds since 1970; the token is never used after it.
    let expiresAt: Double
    /// Scopes granted by `scope` (space-delimited) and `scp` (array or string).
    let scopes: Set<String>
    /// The payload segment as sent (base64url JSON), for `payloadHeader`.
    let encodedPayload: Substring

    /// Checks the registered claims of a token whose signature is good.
    init(token: CompactToken, issuer: IssuerConfiguration, now: Double) throws(TokenRefusal) {
        let claims = token.claims
        let leeway = issuer.leewaySeconds
        guard claims["iss"]?.stringValue == issuer.issuer else {
            throw .invalid(.issuer, "the token's issuer is not \(issuer.issuer)")
        }
        guard case .number(let exp)? = claims["exp"] else {
            throw .invalid(.malformed, "the token has no numeric \"exp\" (expiry)")
        }
        if now > exp + leeway {
            throw .invalid(.expired, "the token expired at \(Self.timestamp(exp))")
        }
        if let nbf = claims["nbf"] {
            guard case .number(let notBefore) = nbf else {
                throw .invalid(.malformed, "the token's \"nbf\" is not a number")
            }
            if now + leeway < notBefore {
                throw .invalid(.notYetValid, "the token is not valid before \(Self.timestamp(notBefore))")
            }
        }
        var issuedAt: Double?
        if let iat = claims["iat"] {
            guard case .number(let value) = iat else {
                throw .invalid(.malformed, "the token's \"iat\" is not a number")
            }
            if now + leeway < value { throw .invalid(.notYetValid, "the token was issued in the future") }
            issuedAt = value
        }
        if let maximum = issuer.maxLifetimeSeconds {
            let lifetime = exp - (issuedAt ?? now)
            if lifetime > maximum {
                throw .invalid(
                    .lifetime,
                    "the token's lifetime (\(Int(lifetime)) s) exceeds the maximum of \(Int(maximum)) s"
                )
            }
        }
        let audiences: [String]
        switch claims["aud"] {
        case .string(let single)?: audiences = [single]
        case .array(let values)?: audiences = values.compactMap(\.stringValue)
        default: throw .invalid(.audience, "the token has no audience (\"aud\")")
        }
        guard audiences.contains(where: issuer.audiences.contains) else {
            throw .invalid(.audience, "audience mismatch: the token is for \(audiences.joined(separator: ", "))")
        }
        self.issuerName = issuer.name
        self.issuerIdentifier = issuer.issuer
        self.introspected = false
        self.claims = claims
        self.expiresAt = exp + leeway
        self.scopes = Self.scopes(in: claims)
        let text = token.text
        let start = text.index(after: text.firstIndex(of: ".")!)
        let end = text[start...].firstIndex(of: ".")!
        self.encodedPayload = text[start..<end]
    }

    /// An active introspection answer (RFC 7662 §2.2), checked like a token's claims where it
    /// has them: `iss` must be the issuer's, `aud` one of its audiences, `exp` and `nbf` hold.
    /// Reused until `exp`, at most the introspection's `maxCacheSeconds`.
    init(
        introspected claims: [String: JSONValue],
        encoded: String,
        issuer: IssuerConfiguration,
        now: Double
    ) throws(TokenRefusal) {
        guard claims["active"] == .bool(true) else { throw .invalid(.inactive, "the token is not active") }
        let leeway = issuer.leewaySeconds
        if let iss = claims["iss"], iss.stringValue != issuer.issuer {
            throw .invalid(.issuer, "the token's issuer is not \(issuer.issuer)")
        }
        var expiresAt = now + (issuer.introspection?.maxCacheSeconds ?? 0)
        if let exp = claims["exp"] {
            guard case .number(let value) = exp else {
                throw .invalid(.malformed, "the token's \"exp\" is not a number")
            }
            if now > value + leeway { throw .invalid(.expired, "the token expired at \(Self.timestamp(value))") }
            expiresAt = min(expiresAt, value + leeway)
        }
        if case .number(let notBefore)? = claims["nbf"], now + leeway < notBefore {
            throw .invalid(.notYetValid, "the token is not valid before \(Self.timestamp(notBefore))")
        }
        if let aud = claims["aud"] {
            let audiences: [String]
            switch aud {
            case .string(let single): audiences = [single]
            case .array(let values): audiences = values.compactMap(\.stringValue)
            default: audiences = []
            }
            guard audiences.contains(where: issuer.audiences.contains) else {
                throw .invalid(.audience, "audience mismatch: the token is for \(audiences.joined(separator: ", "))")
            }
        }
        self.issuerName = issuer.name
        self.issuerIdentifier = issuer.issuer
        self.introspected = true
        self.claims = claims
        self.expiresAt = expiresAt
        self.scopes = Self.scopes(in: claims)
        self.encodedPayload = Substring(encoded)
    }

    /// Scopes granted by `scope` (space-delimited) and `scp` (array or string).
    private static func scopes(in claims: [String: JSONValue]) -> Set<String> {
        var scopes = Set<String>()
        if case .string(let scope)? = claims["scope"] {
            scopes.formUnion(scope.split(separator: " ").map(String.init))
        }
        switch claims["scp"] {
        case .array(let values)?: scopes.formUnion(values.compactMap(\.stringValue))
        case .string(let scope)?: scopes.formUnion(scope.split(separator: " ").map(String.init))
        default: break
        }
        return scopes
    }

    /// Checks the `typ` header against an issuer's `requiredType` (RFC 8725 §3.11 explicit typing).
    static func checkType(_ header: [String: JSONValue], required: String?) throws(TokenRefusal) {
        guard let required else { return }
        func normalized(_ type: String) -> String {
            let lower = type.lowercased()
            return lower.hasPrefix("application/") ? String(lower.dropFirst("application/".count)) : lower
        }
        guard let type = header["typ"]?.stringValue, normalized(type) == normalized(required) else {
            throw .invalid(.type, "the token's type (\"typ\") is not \(required)")
        }
    }

    /// A claim by name; a name with dots reaches into objects when no top-level claim has it.
    func claim(_ name: String) -> JSONValue? {
        JSONValue.claim(name, in: self.claims)
    }

    private static func timestamp(_ seconds: Double) -> String {
        Date(timeIntervalSince1970: seconds).formatted(.iso8601)
    }
}

/// The payload as jwt-kit sees it: jwt-kit checks the signature, ``VerifiedToken`` the claims
/// (with the issuer's leeway and error messages).
struct SignedPayload: JWTPayload {
    let claims: JSONValue

    init(claims: JSONValue) {
        self.claims = claims
    }

    init(from decoder: any Decoder) throws {
        self.claims = try JSONValue(from: decoder)
    }

    func encode(to encoder: any Encoder) throws {
        try self.claims.encode(to: encoder)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
