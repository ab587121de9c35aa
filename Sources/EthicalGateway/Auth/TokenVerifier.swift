import NIOConcurrencyHelpers
public import NIOCore

/// Verifies bearer tokens for plugins, by the same issuer rules and through the same per-loop
/// cache as routes with `auth`: a relay checks the token of a `connect` or `refresh` command
/// with it.
///
/// One verifier lives as long as the gateway: a reload that changes `issuers` installs the new
/// ``Authenticator`` in it, so plugins carried over by the reload verify with the new issuers.
public final class TokenVerifier: Sendable {
    private let current: NIOLockedValueBox<Authenticator?>

    init(authenticator: Authenticator?) {
        self.current = NIOLockedValueBox(authenticator)
    }

    /// The issuers in service.
    var authenticator: Authenticator? { self.current.withLockedValue { $0 } }

    /// Verifies with `authenticator` from now on (a reload was applied).
    func install(_ authenticator: Authenticator?) {
        self.current.withLockedValue { $0 = authenticator }
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
        guard let authenticator = self.authenticator else {
            return eventLoop.makeSucceededFuture(.failure(.invalid(.issuer, "no issuer is configured")))
        }
        var byClaim: [String: Issuer] = [:]
        for name in names {
            if let issuer = authenticator.issuers[name], byClaim[issuer.configuration.issuer] == nil {
                byClaim[issuer.configuration.issuer] = issuer
            }
        }
        let maxTokenBytes = byClaim.values.map(\.configuration.maxTokenBytes).max() ?? 8192
        let introspecting = names.lazy.compactMap { authenticator.issuers[$0] }.first { $0.introspector != nil }
        switch authenticator.check(
            token,
            accepting: byClaim,
            maxTokenBytes: maxTokenBytes,
            introspecting: introspecting,
            on: eventLoop
        ) {
        case .verified(let verified):
            return eventLoop.makeSucceededFuture(.success(VerifiedIdentity(verified)))
        case .refused(let refusal, let issuer):
            authenticator.count(refusal, issuer: issuer)
            return eventLoop.makeSucceededFuture(.failure(refusal))
        case .pending(let verification, let issuer):
            return verification.map { result in
                switch result {
                case .success(let verified): return .success(VerifiedIdentity(verified))
                case .failure(let refusal):
                    authenticator.count(refusal, issuer: issuer.configuration.name)
                    return .failure(refusal)
                }
            }
        }
    }
}
