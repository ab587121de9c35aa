import Foundation
import NIOCore
import NIOHTTP1

/// The built-in filter a route with `auth` runs first: finds the bearer token, verifies it
/// (from the loop's cache when it was seen before), applies the route's policy and passes the
/// chosen claims to the backend as headers.
///
/// A cached token is decided synchronously on the event loop. Only a token not seen before
/// suspends the request: once to reach jwt-kit's key collection (and, rarely, to fetch keys).
struct AuthFilter: Filter {
    let policy: RoutePolicy
    let authenticator: Authenticator
    /// The issuers this route accepts, by their `iss` value (the first listed wins a tie).
    let issuersByIssClaim: [String: Issuer]
    /// Header names (lower-cased) that only the gateway may set: claim headers and the payload header.
    let protectedHeaders: [String]
    /// The largest `maxTokenBytes` of the route's issuers: longer tokens are refused unhashed.
    let maxTokenBytes: Int
    /// The first of the route's issuers with `introspection`: it checks tokens that are not JWTs.
    let introspectingIssuer: Issuer?

    init(policy: RoutePolicy, authenticator: Authenticator) {
        self.policy = policy
        self.authenticator = authenticator
        var byClaim: [String: Issuer] = [:]
        for name in policy.issuerOrder {
            if let issuer = authenticator.issuers[name], byClaim[issuer.configuration.issuer] == nil {
                byClaim[issuer.configuration.issuer] = issuer
            }
        }
        self.issuersByIssClaim = byClaim
        self.maxTokenBytes = byClaim.values.map(\.configuration.maxTokenBytes).max() ?? 8192
        self.introspectingIssuer = policy.issuerOrder.lazy.compactMap { authenticator.issuers[$0] }
            .first { $0.introspector != nil }
        self.protectedHeaders =
            policy.claimHeaders.map { $0.header.lowercased() } + (policy.payloadHeader.map { [$0.lowercased()] } ?? [])
    }

    func filterRequest(_ request: inout GatewayRequest) -> FilterOutcome {
        for name in self.protectedHeaders { request.head.headers.remove(name: name) }
        let token: String
        // The query form is stripped whether or not another source carries a token.
        let fromQuery = self.policy.tokenFromQuery(request)
        if let fromQuery {
            request.head.uri = fromQuery.uri
            request.query = fromQuery.query
        }
        switch self.policy.token(in: request.head.headers) {
        case .failure(let refusal):
            return self.refuse(refusal, issuer: nil, request: request)
        case .success(nil):
            if let fromQuery {
                token = fromQuery.token
            } else {
                if self.policy.anonymous { return .proceed }
                return self.refuse(TokenRefusal(.missing, "no bearer token"), issuer: nil, request: request)
            }
        case .success(let found?):
            token = found
        }

        guard token.utf8.count <= self.maxTokenBytes else {
            return self.refuse(
                .invalid(.malformed, "the token is longer than \(self.maxTokenBytes) bytes"),
                issuer: nil,
                request: request
            )
        }
        let now = Date().timeIntervalSince1970
        let cache = self.authenticator.cache(for: request.eventLoop)
        let key = VerifiedTokenCache.key(for: token)
        if let verified = cache?.cache.lookup(key, now: now) {
            return self.admit(verified, request: &request)
        }

        if let introspecting = self.introspectingIssuer, let introspector = introspecting.introspector,
            token.utf8.lazy.filter({ $0 == UInt8(ascii: ".") }).count != 2
        {
            let verification = request.eventLoop.makeFutureWithTask { await introspector.introspect(token) }
            return self.resume(request, after: verification, issuer: introspecting, cache: cache, key: key)
        }

        let parsed: CompactToken
        let issuer: Issuer
        var matched: Issuer?
        do throws(TokenRefusal) {
            parsed = try CompactToken(token, maxBytes: self.maxTokenBytes)
            guard let claimed = parsed.issuer else { throw .invalid(.issuer, "the token has no issuer (\"iss\")") }
            guard let match = self.issuersByIssClaim[claimed] else {
                throw .invalid(.issuer, "tokens from issuer \(claimed) are not accepted here")
            }
            guard token.utf8.count <= match.configuration.maxTokenBytes else {
                throw .invalid(.malformed, "the token is longer than \(match.configuration.maxTokenBytes) bytes")
            }
            matched = match
            try match.precheck(parsed)
            issuer = match
        } catch {
            return self.refuse(error, issuer: matched?.configuration.name, request: request)
        }

        let verification = request.eventLoop.makeFutureWithTask { await issuer.verify(parsed) }
        return self.resume(request, after: verification, issuer: issuer, cache: cache, key: key)
    }

    /// Suspends the request until `verification` completes, then caches the token and applies
    /// the policy, on the request's event loop.
    private func resume(
        _ request: GatewayRequest,
        after verification: EventLoopFuture<Result<VerifiedToken, TokenRefusal>>,
        issuer: Issuer,
        cache: LoopTokenCache?,
        key: VerifiedTokenCache.Key
    ) -> FilterOutcome {
        let pending = request
        let filter = self
        return .suspend(
            verification.map { result -> FilterResolution in
                var request = pending
                let outcome: FilterOutcome
                switch result {
                case .success(let verified):
                    cache?.cache.insert(verified, for: key, now: Date().timeIntervalSince1970)
                    outcome = filter.admit(verified, request: &request)
                case .failure(let refusal):
                    outcome = filter.refuse(refusal, issuer: issuer.configuration.name, request: request)
                }
                if case .respond(let response) = outcome { return .respond(response) }
                return .proceed(request)
            }
        )
    }

    /// Applies the route's policy to a verified token and sets the claim headers.
    private func admit(_ verified: VerifiedToken, request: inout GatewayRequest) -> FilterOutcome {
        if let refusal = self.policy.check(verified) {
            return self.refuse(refusal, issuer: verified.issuerName, request: request)
        }
        self.policy.forward(verified, headers: &request.head.headers)
        return .proceed
    }

    /// Counts, logs and renders a refusal. Without a known issuer, a route with a single issuer
    /// counts it against that one.
    private func refuse(_ refusal: TokenRefusal, issuer: String?, request: GatewayRequest) -> FilterOutcome {
        let issuer = issuer ?? (self.policy.issuerOrder.count == 1 ? self.policy.issuerOrder.first : nil)
        self.authenticator.count(refusal, issuer: issuer)
        request.logger.info(
            "token refused",
            metadata: [
                "reason": "\(refusal.reason)", "category": "\(refusal.category.rawValue)",
                "issuer": "\(issuer ?? "-")", "error": "\(refusal.errorCode ?? "-")",
            ]
        )
        return .respond(refusal.response(realm: self.policy.realm, requestID: request.requestID))
    }
}
