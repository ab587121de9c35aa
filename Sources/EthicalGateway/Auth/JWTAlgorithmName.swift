/// A JWS algorithm the gateway can accept, as written in a token's `alg` header and in an
/// issuer's `algorithms` list.
///
/// Each algorithm fits exactly one kind of key; ``keyKind`` is what binds a key without an `alg`
/// member to the algorithms it may verify. `none` is not a case: it is never accepted.
public enum JWTAlgorithmName: String, ConfigEnum, Comparable {
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case ps256 = "PS256", ps384 = "PS384", ps512 = "PS512"
    case es256 = "ES256", es384 = "ES384", es512 = "ES512"
    case eddsa = "EdDSA"
    case hs256 = "HS256", hs384 = "HS384", hs512 = "HS512"

    /// The kind of key the algorithm needs.
    enum KeyKind: Hashable, Sendable {
        case rsa
        case ec(curve: String)
        case okp(curve: String)
        case secret
    }

    var keyKind: KeyKind {
        switch self {
        case .rs256, .rs384, .rs512, .ps256, .ps384, .ps512: return .rsa
        case .es256: return .ec(curve: "P-256")
        case .es384: return .ec(curve: "P-384")
        case .es512: return .ec(curve: "P-521")
        case .eddsa: return .okp(curve: "Ed25519")
        case .hs256, .hs384, .hs512: return .secret
        }
    }

    var isHMAC: Bool { self.keyKind == .secret }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        Self.allCases.firstIndex(of: lhs)! < Self.allCases.firstIndex(of: rhs)!
    }
}
