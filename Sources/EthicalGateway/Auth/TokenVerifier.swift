public import NIOCore

/// Verifies bearer tokens for plugins, by the same issuer rules and through the same per-loop
/// cache as routes with `auth`: a relay checks the token of a `connect` or `refresh` command
/// with it.
public final class TokenVerifier: Sendable {
    let authenticator: Authenticator

    init(authenticator: Authenticator) {
        self.authenticator = authenticator
    }

    /// Whether the configuration declares an issuer with this name.
    public func hasIssuer(_ name: String) -> Bool {
        self.authenticator.issuers[name] != nil
    }

    /// Verifies `token` as issued by one of `issuers` (names under `issuers` in the config).
    /// A token seen before on this loop is answered at once from the cache.
    ///
    /// - Returns: a future completed on `eventLoop`.
    public func verify(
        _ token: String,
        issuers names: [String],
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Result<VerifiedIdentity, TokenRefusal>> {
        var byClaim: [String: Issuer] = [:]
        for name in names {
            if let issuer = self.authenticator.issuers[name], byClaim[issuer.configuration.issuer] == nil {
                byClaim[issuer.configuration.issuer] = issuer
            }
        }
        let maxTokenBytes = byClaim.values.map(\.configuration.maxTokenBytes).max() ?? 8192
        let introspecting = names.lazy.compactMap { self.authenticator.issuers[$0] }.first { $0.introspector != nil }
        switch self.authenticator.check(
            token,
            accepting: byClaim,
            maxTokenBytes: maxTokenBytes,
            introspecting: introspecting,
            on: eventLoop
        ) {
        case .verified(let verified):
            return eventLoop.makeSucceededFuture(.success(VerifiedIdentity(verified)))
        case .refused(let refusal, let issuer):
            self.authenticator.count(refusal, issuer: issuer)
            return eventLoop.makeSucceededFuture(.failure(refusal))
        case .pending(let verification, let issuer):
            return verification.map { result in
                switch result {
                case .success(let verified): return .success(VerifiedIdentity(verified))
                case .failure(let refusal):
                    self.authenticator.count(refusal, issuer: issuer.configuration.name)
                    return .failure(refusal)
                }
            }
        }
    }
}
