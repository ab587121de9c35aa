import NIOCore
import NIOHTTP1

/// Why a request's token was refused, rendered as an RFC 6750 challenge.
///
/// `401` with `WWW-Authenticate: Bearer realm="…", error="invalid_token", error_description="…"`
/// for a bad token, `403` with `error="insufficient_scope"` and the scope needed when the token
/// is good but does not grant enough, and a bare `401` challenge when there is no token at all.
public struct TokenRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    enum Kind: Sendable, Equatable {
        /// No token (RFC 6750 §3.1: no error code).
        case missing
        case invalidRequest
        case invalidToken
        case insufficientScope(scope: String?)
        /// The issuer's keys cannot be had; the token cannot be checked now.
        case keysUnavailable
    }

    let kind: Kind
    /// What kind of problem it is, for counters and the log (the reason has details).
    public let category: TokenRefusalCategory
    /// A short reason for the client and the log, e.g. `the token expired at …`.
    public let reason: String

    init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
        switch kind {
        case .missing: self.category = .missing
        case .invalidRequest: self.category = .request
        case .invalidToken: self.category = .malformed
        case .insufficientScope(let scope): self.category = scope == nil ? .claim : .scope
        case .keysUnavailable: self.category = .unavailable
        }
    }

    private init(invalidToken category: TokenRefusalCategory, _ reason: String) {
        self.kind = .invalidToken
        self.category = category
        self.reason = reason
    }

    static func invalid(_ category: TokenRefusalCategory, _ reason: String) -> TokenRefusal {
        TokenRefusal(invalidToken: category, reason)
    }

    public var description: String { self.reason }

    /// The RFC 6750 error code, or `nil` for a missing token.
    public var errorCode: String? {
        switch self.kind {
        case .missing: return nil
        case .invalidRequest: return "invalid_request"
        case .invalidToken, .keysUnavailable: return "invalid_token"
        case .insufficientScope: return "insufficient_scope"
        }
    }

    /// The status, challenge and a small JSON body.
    func response(realm: String, requestID: String) -> GatewayResponse {
        var challenge = "Bearer realm=\"\(realm)\""
        if let code = self.errorCode {
            challenge += ", error=\"\(code)\", error_description=\"\(Self.quotable(self.reason))\""
        }
        if case .insufficientScope(let scope?) = self.kind {
            challenge += ", scope=\"\(Self.quotable(scope))\""
        }
        let status: HTTPResponseStatus
        switch self.kind {
        case .missing, .invalidToken: status = .unauthorized
        case .invalidRequest: status = .badRequest
        case .insufficientScope: status = .forbidden
        case .keysUnavailable: status = .serviceUnavailable
        }
        let problem = ProblemDetails(status: status, detail: self.reason, instance: nil, requestID: requestID)
        let body = problem.jsonBody(allocator: ByteBufferAllocator())
        var headers = HTTPHeaders()
        if status != .serviceUnavailable {
            headers.add(name: "WWW-Authenticate", value: challenge)
        }
        headers.add(name: "Content-Type", value: "application/problem+json")
        headers.add(name: "Cache-Control", value: "no-store")
        return GatewayResponse(status: status, headers: headers, body: body)
    }

    /// `text` with what cannot appear in an RFC 6750 quoted string replaced.
    private static func quotable(_ text: String) -> String {
        String(
            String.UnicodeScalarView(
                text.unicodeScalars.map { scalar in
                    scalar == "\"" || scalar == "\\" || scalar.value < 0x20 || scalar.value > 0x7E ? "'" : scalar
                }
            )
        )
    }
}

/// The kinds of refusal counted per issuer (``Authenticator/refusalCounts()``) and logged.
public enum TokenRefusalCategory: String, Sendable, CaseIterable {
    /// No token (or one the route's sources do not carry).
    case missing
    /// A malformed request: several `Authorization` headers, an empty bearer token.
    case request
    /// Not a well-formed JWS: size, base64url, JSON, missing or mistyped members.
    case malformed
    /// `alg: none`, an unsupported or disallowed algorithm, or one that does not fit the key.
    case algorithm
    /// Header parameters never accepted: `crit`, `jku`, `x5u`, `jwk`, `x5c`.
    case header
    /// A `kid` the issuer does not have, or no key to choose.
    case key
    case signature
    case expired
    /// `nbf` in the future, or `iat` in the future.
    case notYetValid = "not-yet-valid"
    case issuer
    case audience
    /// The `typ` header is not the issuer's `requiredType`.
    case type
    /// Longer lifetime than `maxLifetimeSeconds`.
    case lifetime
    /// Introspection said `"active": false`.
    case inactive
    /// A required scope is missing.
    case scope
    /// A claim rule does not hold.
    case claim
    /// The issuer's keys or introspection endpoint cannot be reached.
    case unavailable
}
