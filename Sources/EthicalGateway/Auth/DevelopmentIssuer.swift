import Crypto
public import Foundation
import JWTKit

/// The key of a `development` issuer: a P-256 key the gateway makes on first use and keeps in
/// its state folder (`development-issuer-<name>.pem`, owner-only), so tokens minted by
/// `ethical-gateway dev-token` keep working across restarts.
public enum DevelopmentIssuer {
    /// The `kid` of the development key.
    static let keyID = "development"

    static func keyFile(stateDirectory: URL, issuerName: String) -> URL {
        stateDirectory.appendingPathComponent("development-issuer-\(issuerName).pem")
    }

    /// The issuer's private key, made and stored when missing (unless `create` is `false`, for
    /// `validate`, which then gets `nil`).
    static func key(stateDirectory: URL, issuerName: String, create: Bool) throws -> P256.Signing.PrivateKey? {
        let file = Self.keyFile(stateDirectory: stateDirectory, issuerName: issuerName)
        if let pem = try? String(contentsOf: file, encoding: .utf8) {
            do {
                return try P256.Signing.PrivateKey(pemRepresentation: pem)
            } catch {
                throw KeySetError("\(file.path) does not hold a P-256 private key; delete it to make a new one")
            }
        }
        guard create else { return nil }
        let key = P256.Signing.PrivateKey()
        do {
            try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        } catch {
            throw KeySetError("cannot create the state folder \(stateDirectory.path): \(error.localizedDescription)")
        }
        guard
            FileManager.default.createFile(
                atPath: file.path,
                contents: Data(key.pemRepresentation.utf8),
                attributes: [.posixPermissions: 0o600]
            )
        else {
            throw KeySetError("cannot write the development issuer key \(file.path)")
        }
        return key
    }

    /// The public JWK of `key`.
    static func publicJWK(_ key: P256.Signing.PrivateKey) -> JSONValue {
        let raw = key.publicKey.rawRepresentation
        return .object([
            "kty": .string("EC"), "crv": .string("P-256"), "kid": .string(Self.keyID), "use": .string("sig"),
            "x": .string(Base64URL.encode(raw.prefix(32))), "y": .string(Base64URL.encode(raw.suffix(32))),
        ])
    }

    /// Signs a token for the development issuer `issuerName` (or the only one) of `configuration`.
    ///
    /// - Parameters:
    ///   - claims: extra claims; they override the defaults (`iss`, `aud`, `sub`, `iat`, `exp`, `jti`, `scope`).
    /// - Throws: ``DevelopmentTokenError`` when there is no such issuer.
    public static func mint(
        configuration: GatewayConfiguration,
        configDirectory: URL,
        issuerName: String?,
        subject: String,
        scope: String?,
        lifetimeSeconds: Double,
        claims extra: [String: JSONValue] = [:]
    ) async throws -> String {
        let candidates = configuration.issuers.filter { $0.value.development }
        let issuer: IssuerConfiguration
        if let issuerName {
            guard let named = candidates[issuerName] else {
                throw DevelopmentTokenError(
                    "no development issuer named \"\(issuerName)\" (development issuers: "
                        + "\(candidates.keys.sorted().joined(separator: ", ").nonEmpty ?? "none"))"
                )
            }
            issuer = named
        } else {
            guard candidates.count == 1, let only = candidates.values.first else {
                throw DevelopmentTokenError(
                    candidates.isEmpty
                        ? "the configuration has no issuer with \"development\": true"
                        : "several development issuers (\(candidates.keys.sorted().joined(separator: ", "))); "
                            + "choose one with --issuer"
                )
            }
            issuer = only
        }
        let stateDirectory = resolveConfigPath(configuration.stateDirectory, relativeTo: configDirectory)
        guard let key = try Self.key(stateDirectory: stateDirectory, issuerName: issuer.name, create: true) else {
            throw DevelopmentTokenError("the development key cannot be made")
        }
        let now = Date().timeIntervalSince1970.rounded(.down)
        var claims: [String: JSONValue] = [
            "iss": .string(issuer.issuer), "aud": .string(issuer.audiences[0]), "sub": .string(subject),
            "iat": .number(now), "exp": .number(now + lifetimeSeconds.rounded(.down)),
            "jti": .string(UUID().uuidString),
        ]
        if let scope { claims["scope"] = .string(scope) }
        for (name, value) in extra { claims[name] = value }
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: try ES256PrivateKey(backing: key), kid: JWKIdentifier(string: Self.keyID))
        var header = JWTHeader()
        header.typ = issuer.requiredType ?? "JWT"
        return try await keys.sign(
            SignedPayload(claims: .object(claims)),
            kid: JWKIdentifier(string: Self.keyID),
            header: header
        )
    }
}

/// Why `dev-token` cannot mint a token.
public struct DevelopmentTokenError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension String {
    fileprivate var nonEmpty: String? { self.isEmpty ? nil : self }
}
