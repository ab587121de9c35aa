import Foundation
import JWTKit
import Logging

/// One configured issuer, ready to verify its tokens: the checks that need no key, the key
/// lookup (with one refetch for an unknown `kid`), jwt-kit's signature check and the claim checks.
final class Issuer: Sendable {
    let configuration: IssuerConfiguration
    let keySource: KeySource
    /// Present when the issuer has `introspection`: checks opaque tokens.
    let introspector: Introspector?

    /// Builds the issuer, reading `jwksFile` (and an introspection secret file) and binding
    /// fixed keys now so that a broken key is a configuration error. A development issuer's key
    /// is made in `stateDirectory` when `createState` is `true`.
    init(
        _ configuration: IssuerConfiguration,
        configDirectory: URL,
        stateDirectory: URL? = nil,
        createState: Bool = false,
        logger: Logger,
        metrics: GatewayMetrics? = nil
    ) throws(ConfigIssueError) {
        self.configuration = configuration
        let path = configuration.jsonPath
        var logger = logger
        logger[metadataKey: "issuer"] = "\(configuration.name)"
        var fetcher: HTTPSFetcher?
        if configuration.jwksURL != nil || configuration.openIDDiscovery || configuration.introspection != nil {
            let caFile = configuration.caFile.map { resolveConfigPath($0, relativeTo: configDirectory) }
            do {
                fetcher = try HTTPSFetcher(caFile: caFile, timeoutSeconds: configuration.fetchTimeoutSeconds)
            } catch {
                throw ConfigIssueError(
                    ConfigIssue(
                        path: "\(path).caFile",
                        message: "\(caFile?.path ?? "") does not hold PEM certificates (\(error))"
                    )
                )
            }
        }
        if let introspection = configuration.introspection, let fetcher {
            var secret = introspection.clientSecret ?? ""
            if let file = introspection.clientSecretFile {
                let url = resolveConfigPath(file, relativeTo: configDirectory)
                guard let data = FileManager.default.contents(atPath: url.path) else {
                    throw ConfigIssueError(
                        ConfigIssue(
                            path: "\(path).introspection.clientSecretFile",
                            message: "\(url.path) cannot be read"
                        )
                    )
                }
                secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            self.introspector = Introspector(issuer: configuration, secret: secret, fetcher: fetcher, logger: logger)
        } else {
            self.introspector = nil
        }
        if configuration.jwksURL != nil || configuration.openIDDiscovery, let fetcher {
            self.keySource = KeySource(issuer: configuration, fetcher: fetcher, logger: logger, metrics: metrics)
        } else {
            self.keySource = try Self.fixedKeys(
                configuration,
                configDirectory: configDirectory,
                stateDirectory: stateDirectory,
                createState: createState,
                logger: logger
            )
        }
    }

    /// Keys from `keys`, `jwksFile` or the development key; none for an issuer that only introspects.
    private static func fixedKeys(
        _ configuration: IssuerConfiguration,
        configDirectory: URL,
        stateDirectory: URL?,
        createState: Bool,
        logger: Logger
    ) throws(ConfigIssueError) -> KeySource {
        let path = configuration.jsonPath
        let keys: KeySet
        let keyPath =
            configuration.development
            ? "\(path).development" : configuration.jwksFile != nil ? "\(path).jwksFile" : "\(path).keys"
        if !configuration.development && configuration.jwksFile == nil && configuration.keys == nil {
            return KeySource(fixed: .empty, issuer: configuration, logger: logger)
        }
        do {
            if configuration.development {
                guard let stateDirectory,
                    let key = try DevelopmentIssuer.key(
                        stateDirectory: stateDirectory,
                        issuerName: configuration.name,
                        create: createState
                    )
                else {
                    // `validate` writes nothing; the key is made when the gateway runs.
                    return KeySource(fixed: .empty, issuer: configuration, logger: logger)
                }
                keys = try KeySet(jwks: [DevelopmentIssuer.publicJWK(key)], allowed: [.es256], allowSecrets: false)
                let file = DevelopmentIssuer.keyFile(stateDirectory: stateDirectory, issuerName: configuration.name)
                logger.notice(
                    "development issuer: tokens from `ethical-gateway dev-token` are accepted; not for production",
                    metadata: ["key-file": "\(file.path)"]
                )
            } else if let file = configuration.jwksFile {
                let url = resolveConfigPath(file, relativeTo: configDirectory)
                guard let data = FileManager.default.contents(atPath: url.path) else {
                    throw KeySetError("\(url.path) cannot be read")
                }
                guard let document = try? JSONValue.parse(data) else {
                    throw KeySetError("\(url.path) is not valid JSON")
                }
                keys = try KeySet(jwks: document, allowed: configuration.algorithms, allowSecrets: true)
            } else {
                keys = try KeySet(jwks: configuration.keys ?? [], allowed: configuration.algorithms, allowSecrets: true)
            }
        } catch {
            throw ConfigIssueError(ConfigIssue(path: keyPath, message: "\(error)"))
        }
        // A key that fits no allowed algorithm (a P-384 key where only RS256 and ES256 are
        // allowed) is skipped with a warning, as for a fetched key set; the set is an error only
        // when nothing usable is left.
        if keys.keys.isEmpty {
            let reasons = keys.skipped.isEmpty ? "" : " (skipped: \(keys.skipped.joined(separator: "; ")))"
            throw ConfigIssueError(
                ConfigIssue(path: keyPath, message: "expected at least one usable signing key\(reasons)")
            )
        }
        for skipped in keys.skipped {
            logger.warning(
                "skipping a key that fits none of the issuer's algorithms or is unusable",
                metadata: ["issuer": "\(configuration.name)", "key": "\(skipped)", "path": "\(keyPath)"]
            )
        }
        return KeySource(fixed: keys, issuer: configuration, logger: logger)
    }

    /// The checks that need no key: allowed algorithm and `typ`.
    func precheck(_ token: CompactToken) throws(TokenRefusal) {
        guard self.configuration.algorithms.contains(token.algorithm) else {
            throw .invalid(.algorithm, "algorithm \(token.algorithm.rawValue) is not allowed for this issuer")
        }
        try VerifiedToken.checkType(token.header, required: self.configuration.requiredType)
    }

    /// Verifies the signature with the issuer's keys and then the claims.
    func verify(_ token: CompactToken) async -> Result<VerifiedToken, TokenRefusal> {
        do throws(TokenRefusal) {
            try self.precheck(token)
            var keys = try await self.keySource.keys()
            let binding = KeySet.Binding(kid: token.kid, algorithm: token.algorithm)
            if let kid = token.kid, !keys.kids.contains(kid) {
                if let fresh = await self.keySource.refetchForUnknownKid() { keys = fresh }
                guard keys.kids.contains(kid) else {
                    throw .invalid(.key, "unknown key id \(CanonicalRequest.excerpt(kid))")
                }
            }
            if let kid = token.kid {
                guard keys.bindings.contains(binding) else {
                    throw .invalid(
                        .algorithm,
                        "algorithm \(token.algorithm.rawValue) does not fit key \(CanonicalRequest.excerpt(kid))"
                    )
                }
            } else if !keys.bindings.contains(binding) && keys.count(for: token.algorithm) != 1 {
                throw .invalid(
                    .key,
                    keys.count(for: token.algorithm) == 0
                        ? "no key of this issuer fits algorithm \(token.algorithm.rawValue)"
                        : "the token has no key id (\"kid\") and the issuer has several keys"
                )
            }
            let collection = await keys.collection(for: token.algorithm)
            do {
                _ = try await collection.verify(token.text, as: SignedPayload.self)
            } catch {
                throw .invalid(.signature, "the token's signature is invalid")
            }
            return .success(
                try VerifiedToken(token: token, issuer: self.configuration, now: Date().timeIntervalSince1970)
            )
        } catch {
            return .failure(error)
        }
    }
}
