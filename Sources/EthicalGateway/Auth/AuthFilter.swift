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
        let introspecting = policy.issuerOrder.lazy.compactMap { authenticator.issuers[$0] }
            .first { $0.introspector != nil }
        self.introspectingIssuer = introspecting
        self.maxTokenBytes =
            (byClaim.values.map(\.configuration.maxTokenBytes)
            + (introspecting.map { [$0.configuration.maxTokenBytes] } ?? [])).max() ?? 8192
        self.protectedHeaders =
            policy.claimHeaders.map { $0.header.lowercased() } + (policy.payloadHeader.map { [$0.lowercased()] } ?? [])
    }

    func filterRequest(_ request: inout GatewayRequest) -> FilterOutcome {
        for name in self.protectedHeaders { request.head.headers.remove(name: name) }
        let token: String
        // The query form is stripped whether or not another source carries a token.
        var fromQuery: String?
        switch self.policy.tokenFromQuery(request) {
        case .failure(let refusal):
            return self.refuse(refusal, issuer: nil, request: request)
        case .success(let stripped):
            request.head.uri = stripped.uri
            request.query = stripped.query
            fromQuery = stripped.token
        case nil:
            break
        }
        switch self.policy.token(in: request.head.headers) {
        case .failure(let refusal):
            return self.refuse(refusal, issuer: nil, request: request)
        case .success(nil):
            if let fromQuery {
                token = fromQuery
            } else {
                if self.policy.anonymous { return .proceed }
                return self.refuse(TokenRefusal(.missing, "no bearer token"), issuer: nil, request: request)
            }
        case .success(let found?):
            token = found
        }

        switch self.authenticator.check(
            token,
            accepting: self.issuersByIssClaim,
            maxTokenBytes: self.maxTokenBytes,
            introspecting: self.introspectingIssuer,
            on: request.eventLoop
        ) {
        case .verified(let verified):
            return self.admit(verified, request: &request)
        case .refused(let refusal, let issuer):
            return self.refuse(refusal, issuer: issuer, request: request)
        case .pending(let verification, let issuer):
            return self.resume(request, after: verification, issuer: issuer)
        }
    }

    /// Suspends the request until `verification` completes, then caches the token and applies
    /// the policy, on the request's event loop.
    private func resume(
        _ request: GatewayRequest,
        after verification: EventLoopFuture<Result<VerifiedToken, TokenRefusal>>,
        issuer: Issuer
    ) -> FilterOutcome {
        let pending = request
        let filter = self
        return .suspend(
            verification.map { result -> FilterResolution in
                var request = pending
                let outcome: FilterOutcome
                switch result {
                case .success(let verified):
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
        request.identity = VerifiedIdentity(verified)
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
        var response = refusal.response(realm: self.policy.realm, requestID: request.requestID)
        response.refusalCategory = refusal.category.rawValue
        return .respond(response)
    }
}
