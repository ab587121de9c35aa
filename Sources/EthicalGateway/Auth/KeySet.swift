import Foundation
import JWTKit
import NIOConcurrencyHelpers

/// An issuer's verification keys, each bound to the algorithms it may verify.
///
/// A JWK without `alg` is bound here, once, to every algorithm its type and curve allow that
/// the issuer also allows (an RSA key to the allowed `RS*` and `PS*`, a P-384 key to `ES384`),
/// and each (key, algorithm) pair gets its own jwt-kit signer. jwt-kit on its own would fix such
/// a key to the algorithm of the first token it sees, so an accepted PS256 token would make later
/// RS256 tokens on the same key fail.
final class KeySet: Sendable {
    /// One key usable with one algorithm.
    struct Binding: Hashable, Sendable {
        var kid: String?
        var algorithm: JWTAlgorithmName
    }

    enum PreparedKey: Sendable {
        case rsa(Insecure.RSA.PublicKey)
        case p256(ES256PublicKey)
        case p384(ES384PublicKey)
        case p521(ES512PublicKey)
        case ed25519(EdDSA.PublicKey)
        case secret(HMACKey)
    }

    struct BoundKey: Sendable {
        var binding: Binding
        var key: PreparedKey
    }

    let keys: [BoundKey]
    let bindings: Set<Binding>
    /// Every `kid` in the set, whatever algorithm it is bound to.
    let kids: Set<String>
    /// Keys the set skipped, with the reason (for the log).
    let skipped: [String]
    private let collections = NIOLockedValueBox<[JWTAlgorithmName: JWTKeyCollection]>([:])

    static let empty = KeySet(keys: [], skipped: [])

    private init(keys: [BoundKey], skipped: [String]) {
        self.keys = keys
        self.bindings = Set(keys.map(\.binding))
        self.kids = Set(keys.compactMap(\.binding.kid))
        self.skipped = skipped
    }

    /// Binds the keys of a JWKS document (`{"keys": [...]}`).
    ///
    /// - Parameters:
    ///   - allowSecrets: whether `oct` keys (HMAC secrets) are taken; never for keys from the network.
    /// - Throws: ``KeySetError`` when the document is not a JWKS.
    convenience init(jwks: JSONValue, allowed: [JWTAlgorithmName], allowSecrets: Bool) throws {
        guard case .object(let members) = jwks, case .array(let keys)? = members["keys"] else {
            throw KeySetError("expected a JSON Web Key Set: an object with a \"keys\" array")
        }
        try self.init(jwks: keys, allowed: allowed, allowSecrets: allowSecrets)
    }

    /// Binds a list of JWKs; see ``init(jwks:allowed:allowSecrets:)``.
    convenience init(jwks keys: [JSONValue], allowed: [JWTAlgorithmName], allowSecrets: Bool) throws {
        var bound: [BoundKey] = []
        var seen = Set<Binding>()
        var skipped: [String] = []
        for (offset, value) in keys.enumerated() {
            guard case .object(let jwk) = value else {
                throw KeySetError("keys[\(offset)]: expected a JSON Web Key object")
            }
            let kid = jwk["kid"]?.stringValue
            let label = kid.map { "key \"\($0)\"" } ?? "keys[\(offset)]"
            do {
                for key in try Self.bind(jwk, kid: kid, allowed: allowed, allowSecrets: allowSecrets)
                where seen.insert(key.binding).inserted {
                    bound.append(key)
                }
            } catch let error as KeySetError {
                skipped.append("\(label): \(error.message)")
            } catch {
                skipped.append("\(label): \(error)")
            }
        }
        self.init(keys: bound, skipped: skipped)
    }

    private static func bind(
        _ jwk: [String: JSONValue],
        kid: String?,
        allowed: [JWTAlgorithmName],
        allowSecrets: Bool
    ) throws -> [BoundKey] {
        if let use = jwk["use"]?.stringValue, use != "sig" {
            throw KeySetError("\"use\" is \"\(use)\", not \"sig\"")
        }
        func member(_ name: String) throws -> String {
            guard let value = jwk[name]?.stringValue, !value.isEmpty else {
                throw KeySetError("missing \"\(name)\"")
            }
            return value
        }
        let kty = try member("kty")
        let kind: JWTAlgorithmName.KeyKind
        switch kty {
        case "RSA": kind = .rsa
        case "EC": kind = .ec(curve: try member("crv"))
        case "OKP": kind = .okp(curve: try member("crv"))
        case "oct":
            guard allowSecrets else { throw KeySetError("HMAC secrets are never taken from the network") }
            kind = .secret
        default: throw KeySetError("unsupported key type \"\(kty)\"")
        }
        var algorithms = allowed.filter { $0.keyKind == kind }
        if let alg = jwk["alg"]?.stringValue {
            guard let declared = JWTAlgorithmName(rawValue: alg), declared.keyKind == kind else {
                throw KeySetError("\"alg\" \(alg) does not fit an \(kty) key\(kind.curveSuffix)")
            }
            algorithms = algorithms.filter { $0 == declared }
        }
        guard !algorithms.isEmpty else {
            throw KeySetError("no allowed algorithm fits an \(kty) key\(kind.curveSuffix)")
        }
        let key: PreparedKey
        switch kind {
        case .rsa:
            key = .rsa(try Insecure.RSA.PublicKey(modulus: try member("n"), exponent: try member("e")))
        case .ec(let curve):
            let parameters = (x: try member("x"), y: try member("y"))
            switch curve {
            case "P-256": key = .p256(try ES256PublicKey(parameters: parameters))
            case "P-384": key = .p384(try ES384PublicKey(parameters: parameters))
            case "P-521": key = .p521(try ES512PublicKey(parameters: parameters))
            default: throw KeySetError("unsupported curve \"\(curve)\"")
            }
        case .okp(let curve):
            guard curve == "Ed25519" else { throw KeySetError("unsupported curve \"\(curve)\"") }
            key = .ed25519(try EdDSA.PublicKey(x: try member("x"), curve: .ed25519))
        case .secret:
            let encoded = Substring(try member("k"))
            guard let secret = Base64URL.decode(encoded) else {
                if let canonical = Base64URL.canonicalLastCharacter(of: encoded), let last = encoded.last {
                    throw KeySetError(
                        "\"k\" is not canonical base64url: its last character \"\(last)\" sets bits past the "
                            + "secret's last byte (RFC 4648 3.5); the same secret is spelt ending in \"\(canonical)\""
                    )
                }
                throw KeySetError("\"k\" is not base64url without padding (RFC 4648 5)")
            }
            guard secret.count >= 32 else {
                throw KeySetError("\"k\" is \(secret.count) bytes; a secret must be at least 32 bytes")
            }
            // RFC 7518 §3.2: the secret is at least as long as the hash (and jwt-kit traps otherwise).
            let long = algorithms.filter { secret.count >= $0.minimumSecretBytes }
            guard !long.isEmpty else {
                throw KeySetError(
                    "the secret is \(secret.count) bytes; \(algorithms.map(\.rawValue).joined(separator: ", ")) "
                        + "needs at least \(algorithms.map(\.minimumSecretBytes).min() ?? 0)"
                )
            }
            algorithms = long
            key = .secret(HMACKey(from: secret))
        }
        return algorithms.map { BoundKey(binding: Binding(kid: kid, algorithm: $0), key: key) }
    }

    /// The jwt-kit collection holding every key bound to `algorithm`, built on first use.
    ///
    /// A key without `kid` is added first so that it is the collection's default; when there is
    /// none, the first key is the default (used only when it is the only key for the algorithm).
    func collection(for algorithm: JWTAlgorithmName) async -> JWTKeyCollection {
        if let existing = self.collections.withLockedValue({ $0[algorithm] }) { return existing }
        let collection = JWTKeyCollection()
        let keys = self.keys.filter { $0.binding.algorithm == algorithm }
            .sorted { ($0.binding.kid == nil ? 0 : 1) < ($1.binding.kid == nil ? 0 : 1) }
        for key in keys {
            let kid = key.binding.kid.map { JWKIdentifier(string: $0) }
            switch (key.key, algorithm) {
            case (.rsa(let rsa), .rs256): await collection.add(rsa: rsa, digestAlgorithm: .sha256, kid: kid)
            case (.rsa(let rsa), .rs384): await collection.add(rsa: rsa, digestAlgorithm: .sha384, kid: kid)
            case (.rsa(let rsa), .rs512): await collection.add(rsa: rsa, digestAlgorithm: .sha512, kid: kid)
            case (.rsa(let rsa), .ps256): await collection.add(pss: rsa, digestAlgorithm: .sha256, kid: kid)
            case (.rsa(let rsa), .ps384): await collection.add(pss: rsa, digestAlgorithm: .sha384, kid: kid)
            case (.rsa(let rsa), .ps512): await collection.add(pss: rsa, digestAlgorithm: .sha512, kid: kid)
            case (.p256(let ec), _): await collection.add(ecdsa: ec, kid: kid)
            case (.p384(let ec), _): await collection.add(ecdsa: ec, kid: kid)
            case (.p521(let ec), _): await collection.add(ecdsa: ec, kid: kid)
            case (.ed25519(let ed), _): await collection.add(eddsa: ed, kid: kid)
            case (.secret(let secret), .hs256): await collection.add(hmac: secret, digestAlgorithm: .sha256, kid: kid)
            case (.secret(let secret), .hs384): await collection.add(hmac: secret, digestAlgorithm: .sha384, kid: kid)
            case (.secret(let secret), .hs512): await collection.add(hmac: secret, digestAlgorithm: .sha512, kid: kid)
            default: continue  // unreachable: bindings only pair keys with algorithms of their kind
            }
        }
        return self.collections.withLockedValue { collections in
            if let raced = collections[algorithm] { return raced }
            collections[algorithm] = collection
            return collection
        }
    }

    /// How many keys are bound to `algorithm`.
    func count(for algorithm: JWTAlgorithmName) -> Int {
        self.keys.reduce(0) { $0 + ($1.binding.algorithm == algorithm ? 1 : 0) }
    }
}

/// Why a key or key set cannot be used.
struct KeySetError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { self.message }
}

extension JWTAlgorithmName {
    /// Shortest HMAC secret for the algorithm: the size of its hash.
    fileprivate var minimumSecretBytes: Int {
        switch self {
        case .hs384: return 48
        case .hs512: return 64
        default: return 32
        }
    }
}

extension JWTAlgorithmName.KeyKind {
    fileprivate var curveSuffix: String {
        switch self {
        case .ec(let curve), .okp(let curve): return " on curve \(curve)"
        case .rsa, .secret: return ""
        }
    }
}
