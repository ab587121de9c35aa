import Foundation
import NIOCore

/// Where checking a token got to without waiting: decided from the loop's cache or by a
/// precheck, or waiting for a signature check (or an introspection) that then fills the cache.
enum TokenCheck {
    case verified(VerifiedToken)
    /// Refused; `issuer` names the issuer the token claimed when that is known.
    case refused(TokenRefusal, issuer: String?)
    /// The full check runs off the loop; the future completes on the loop, the cache already filled.
    case pending(EventLoopFuture<Result<VerifiedToken, TokenRefusal>>, issuer: Issuer)
}

extension Authenticator {
    /// Checks `token` against the issuers in `accepting` (keyed by their `iss` value): a cached
    /// token is decided on the loop; any other is parsed, prechecked and verified off the loop.
    /// A token that is not a JWT goes to `introspecting`'s introspection endpoint, if given.
    func check(
        _ token: String,
        accepting issuersByIssClaim: [String: Issuer],
        maxTokenBytes: Int,
        introspecting: Issuer?,
        on eventLoop: any EventLoop
    ) -> TokenCheck {
        guard token.utf8.count <= maxTokenBytes else {
            return .refused(.invalid(.malformed, "the token is longer than \(maxTokenBytes) bytes"), issuer: nil)
        }
        let cache = self.cache(for: eventLoop)
        let key = VerifiedTokenCache.key(for: token)
        // The loop's cache is shared by every route. A token another route's issuer verified is
        // taken from it only when this route would have asked the same issuer: two issuers may
        // share an `iss` value (with other keys or audiences), and the route's first listed
        // decides, cached or not.
        if let verified = cache?.cache.lookup(key, now: Date().timeIntervalSince1970),
            (verified.introspected ? introspecting : issuersByIssClaim[verified.issuerIdentifier])?
                .configuration.name == verified.issuerName
        {
            return .verified(verified)
        }
        func caching(
            _ verification: EventLoopFuture<Result<VerifiedToken, TokenRefusal>>,
            _ issuer: Issuer
        )
            -> TokenCheck
        {
            .pending(
                verification.map { result in
                    if case .success(let verified) = result {
                        cache?.cache.insert(verified, for: key, now: Date().timeIntervalSince1970)
                    }
                    return result
                },
                issuer: issuer
            )
        }

        if let introspecting, let introspector = introspecting.introspector,
            token.utf8.lazy.filter({ $0 == UInt8(ascii: ".") }).count != 2
        {
            // The introspecting issuer's own limit: the route's is the largest of its issuers'.
            guard token.utf8.count <= introspecting.configuration.maxTokenBytes else {
                return .refused(
                    .invalid(.malformed, "the token is longer than \(introspecting.configuration.maxTokenBytes) bytes"),
                    issuer: introspecting.configuration.name
                )
            }
            return caching(eventLoop.makeFutureWithTask { await introspector.introspect(token) }, introspecting)
        }

        var matched: Issuer?
        do throws(TokenRefusal) {
            let parsed = try CompactToken(token, maxBytes: maxTokenBytes)
            guard let claimed = parsed.issuer else { throw .invalid(.issuer, "the token has no issuer (\"iss\")") }
            guard let issuer = issuersByIssClaim[claimed] else {
                throw .invalid(.issuer, "tokens from issuer \(claimed) are not accepted here")
            }
            guard token.utf8.count <= issuer.configuration.maxTokenBytes else {
                throw .invalid(.malformed, "the token is longer than \(issuer.configuration.maxTokenBytes) bytes")
            }
            matched = issuer
            try issuer.precheck(parsed)
            return caching(eventLoop.makeFutureWithTask { await issuer.verify(parsed) }, issuer)
        } catch {
            return .refused(error, issuer: matched?.configuration.name)
        }
    }
}
