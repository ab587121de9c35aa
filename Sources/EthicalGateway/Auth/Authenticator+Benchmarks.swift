// Entry points for the micro benchmarks in `Benchmarks/` (ordo-one/benchmark), a separate package
// that depends on this one. They are SPI, not API: `@_spi(Benchmarks) import EthicalGateway` is
// needed to see them, and their shape follows ``AuthFilter``'s, which may change at any time.

import Foundation

@_spi(Benchmarks)
extension Authenticator {
    /// Checks a token the way the auth filter does when its loop's cache has not seen it: split
    /// and decode, issuer by `iss`, algorithm and `typ` prechecks, the key lookup, jwt-kit's
    /// signature check and the registered claims. No cache is read or written.
    ///
    /// - Returns: whether the token is accepted.
    public func verifyUncached(_ token: String) async -> Bool {
        await self.verifiedUncached(token) != nil
    }

    /// The filter a route with `auth` runs first, as the runtime builds it: bearer token from the
    /// headers, the loop's cache, then verification and the route's policy. Run it on one of the
    /// loops of the group this authenticator was built with, as the gateway does.
    public func authFilter(for route: RouteAuthConfiguration) -> any Filter {
        AuthFilter(policy: RoutePolicy(route), authenticator: self)
    }

    fileprivate func verifiedUncached(_ token: String) async -> VerifiedToken? {
        let maxBytes = self.issuers.values.map(\.configuration.maxTokenBytes).max() ?? 8192
        guard let parsed = try? CompactToken(token, maxBytes: maxBytes), let claimed = parsed.issuer,
            let issuer = self.issuers.values.first(where: { $0.configuration.issuer == claimed })
        else { return nil }
        guard (try? issuer.precheck(parsed)) != nil else { return nil }
        return try? await issuer.verify(parsed).get()
    }
}

/// One event loop's cache of verified tokens, driven the way the auth filter drives it, for the
/// micro benchmarks in `Benchmarks/`. SPI, not API (see `Authenticator+Benchmarks.swift`).
///
/// Not `Sendable`: like the cache it wraps, one thread at a time uses it.
@_spi(Benchmarks)
public final class TokenCacheProbe {
    private let authenticator: Authenticator
    private let cache: VerifiedTokenCache

    /// A cache of the size the gateway gives each event loop.
    public init(authenticator: Authenticator) {
        self.authenticator = authenticator
        self.cache = VerifiedTokenCache(capacity: Authenticator.cacheCapacity)
    }

    /// Verifies a token fully and keeps it, as the filter does after a miss.
    ///
    /// - Returns: whether the token is accepted (and now cached).
    public func admit(_ token: String) async -> Bool {
        guard let verified = await self.authenticator.verifiedUncached(token) else { return false }
        self.cache.insert(verified, for: VerifiedTokenCache.key(for: token), now: Date().timeIntervalSince1970)
        return true
    }

    /// What a token seen before costs: hashing the token and a lookup (with its `exp` check).
    ///
    /// - Returns: whether the token was found, unexpired.
    public func lookup(_ token: String) -> Bool {
        self.cache.lookup(VerifiedTokenCache.key(for: token), now: Date().timeIntervalSince1970) != nil
    }
}

@available(*, unavailable)
extension TokenCacheProbe: Sendable {}
