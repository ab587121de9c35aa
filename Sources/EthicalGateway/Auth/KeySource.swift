import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Where an issuer's keys come from, and the cache of what was last fetched.
///
/// Fixed keys (`keys`, `jwksFile`) are bound once when the configuration loads. Fetched keys
/// (`jwksURL`, `openIDDiscovery`) are cached for the `Cache-Control` max-age (bounded by the
/// issuer's minimum and maximum), refreshed ahead of expiry when used, and kept when the
/// issuer is unreachable. Every fetch is single-flight. Fetches for unknown `kid`s, and retries
/// after a failed fetch, are at least `jwksRefetchIntervalSeconds` apart, so tokens with random
/// `kid`s or an unreachable issuer cannot make the gateway hammer it.
final class KeySource: Sendable {
    private enum Origin: Sendable {
        case fixed
        case jwks(HTTPSURL)
        case discovery(HTTPSURL)
    }

    private struct State: Sendable {
        var keys: KeySet?
        /// When the fetched keys are refreshed: at 90% of their cache lifetime, so a refresh
        /// normally lands before they expire; after a failed fetch, one refetch interval later.
        var refreshAt = NIODeadline.distantPast
        var lastFetchStart: NIODeadline?
        var inFlight: Task<KeySet?, Never>?
        /// The JWKS URL found by discovery.
        var discoveredJWKS: HTTPSURL?
        var fetchCount = 0
    }

    private let origin: Origin
    private let issuer: IssuerConfiguration
    private let fetcher: HTTPSFetcher?
    /// Where fetches are counted (`gateway_jwks_fetches_total`, `..._last_refresh_timestamp_seconds`).
    private let metrics: GatewayMetrics?
    private let logger: Logger
    private let state: NIOLockedValueBox<State>

    /// Keys fixed in the configuration.
    init(fixed keys: KeySet, issuer: IssuerConfiguration, logger: Logger) {
        self.origin = .fixed
        self.issuer = issuer
        self.fetcher = nil
        self.metrics = nil
        self.logger = logger
        self.state = NIOLockedValueBox(State(keys: keys, refreshAt: .distantFuture))
    }

    /// Keys fetched from the issuer's JWKS URL or by OpenID discovery.
    init(issuer: IssuerConfiguration, fetcher: HTTPSFetcher, logger: Logger, metrics: GatewayMetrics? = nil) {
        self.metrics = metrics
        if let url = issuer.jwksURL.flatMap(HTTPSURL.init) {
            self.origin = .jwks(url)
        } else {
            let base = issuer.issuer.hasSuffix("/") ? String(issuer.issuer.dropLast()) : issuer.issuer
            self.origin = .discovery(HTTPSURL(base + "/.well-known/openid-configuration")!)
        }
        self.issuer = issuer
        self.fetcher = fetcher
        self.logger = logger
        self.state = NIOLockedValueBox(State())
    }

    private var refetchInterval: TimeAmount {
        .milliseconds(Int64(self.issuer.jwksRefetchIntervalSeconds * 1000))
    }

    /// How many fetches of the key set have started (for tests and the log).
    var fetchCount: Int { self.state.withLockedValue { $0.fetchCount } }

    /// The current keys, fetching them first when there are none yet. Starts a background
    /// refresh when they are due; keeps serving them when a refresh fails.
    func keys() async throws(TokenRefusal) -> KeySet {
        let now = NIODeadline.now()
        let (keys, pending) = self.state.withLockedValue { state -> (KeySet?, Task<KeySet?, Never>?) in
            if let keys = state.keys {
                if now >= state.refreshAt { _ = self.startFetch(&state, now: now, reason: "refresh", limited: false) }
                return (keys, nil)
            }
            return (nil, self.startFetch(&state, now: now, reason: "first fetch", limited: true))
        }
        if let keys { return keys }
        if let pending, let keys = await pending.value { return keys }
        throw TokenRefusal(.keysUnavailable, "the issuer's keys cannot be fetched at the moment")
    }

    /// After a token named an unknown `kid`: one fetch, unless one ran within the refetch
    /// interval; concurrent callers share it. Returns the keys to try again with.
    func refetchForUnknownKid() async -> KeySet? {
        let now = NIODeadline.now()
        let (current, pending) = self.state.withLockedValue { state -> (KeySet?, Task<KeySet?, Never>?) in
            (state.keys, self.startFetch(&state, now: now, reason: "unknown kid", limited: true))
        }
        guard let pending else { return current }
        return await pending.value ?? current
    }

    /// The running fetch, or a new one unless this source is fixed or (when `limited`) the last
    /// fetch began less than the refetch interval ago.
    private func startFetch(
        _ state: inout State,
        now: NIODeadline,
        reason: String,
        limited: Bool
    ) -> Task<KeySet?, Never>? {
        guard case .fixed = self.origin else {
            if let running = state.inFlight { return running }
            if limited, let last = state.lastFetchStart, now < last + self.refetchInterval { return nil }
            state.lastFetchStart = now
            state.fetchCount += 1
            let task = Task { await self.fetch(reason: reason) }
            state.inFlight = task
            return task
        }
        return nil
    }

    /// Fetches, binds and stores a key set; `nil` (and the previous keys stay) on failure.
    private func fetch(reason: String) async -> KeySet? {
        defer { self.state.withLockedValue { $0.inFlight = nil } }
        guard let fetcher = self.fetcher else { return nil }
        do {
            let url = try await self.jwksURL(fetcher)
            let response = try await fetcher.get(url)
            guard response.status == .ok else {
                throw HTTPSFetchError("\(url.host) answered \(response.status.code) for the key set")
            }
            let document = try JSONDecoder().decode(JSONValue.self, from: Data(response.body.readableBytesView))
            let keys = try KeySet(jwks: document, allowed: self.issuer.algorithms, allowSecrets: false)
            for skipped in keys.skipped {
                self.logger.notice(
                    "issuer key not used",
                    metadata: ["issuer": "\(self.issuer.name)", "key": "\(skipped)"]
                )
            }
            let lifetime = self.cacheLifetime(response.headers)
            self.state.withLockedValue { state in
                state.keys = keys
                state.refreshAt = .now() + .milliseconds(Int64(lifetime * 900))
            }
            self.metrics?.countKeyFetch(issuer: self.issuer.name, succeeded: true)
            self.logger.debug(
                "fetched issuer keys",
                metadata: [
                    "issuer": "\(self.issuer.name)", "reason": "\(reason)", "keys": "\(keys.kids.sorted())",
                    "cache-seconds": "\(lifetime)",
                ]
            )
            return keys
        } catch {
            let hasKeys = self.state.withLockedValue { state in
                state.refreshAt = .now() + self.refetchInterval
                return state.keys != nil
            }
            self.metrics?.countKeyFetch(issuer: self.issuer.name, succeeded: false)
            self.logger.warning(
                "cannot fetch issuer keys\(hasKeys ? "; keeping the last good set" : "")",
                metadata: ["issuer": "\(self.issuer.name)", "reason": "\(reason)", "error": "\(error)"]
            )
            return nil
        }
    }

    private func jwksURL(_ fetcher: HTTPSFetcher) async throws -> HTTPSURL {
        switch self.origin {
        case .fixed: throw HTTPSFetchError("fixed keys are not fetched")
        case .jwks(let url): return url
        case .discovery(let url):
            if let known = self.state.withLockedValue({ $0.discoveredJWKS }) { return known }
            let response = try await fetcher.get(url)
            guard response.status == .ok else {
                throw HTTPSFetchError("\(url.host) answered \(response.status.code) for the OpenID configuration")
            }
            let document = try JSONDecoder().decode(JSONValue.self, from: Data(response.body.readableBytesView))
            guard case .object(let members) = document else {
                throw HTTPSFetchError("the OpenID configuration is not a JSON object")
            }
            guard members["issuer"]?.stringValue == self.issuer.issuer else {
                throw HTTPSFetchError("the OpenID configuration names another issuer")
            }
            guard let uri = members["jwks_uri"]?.stringValue, let jwks = HTTPSURL(uri) else {
                throw HTTPSFetchError("the OpenID configuration has no https \"jwks_uri\"")
            }
            self.state.withLockedValue { $0.discoveredJWKS = jwks }
            return jwks
        }
    }

    /// Seconds to keep a key set: `Cache-Control: max-age`, bounded by the issuer's settings;
    /// without one, five minutes within those bounds.
    private func cacheLifetime(_ headers: HTTPHeaders) -> Double {
        var maxAge: Double?
        for directive in headers[canonicalForm: "cache-control"] {
            let lower = directive.lowercased()
            if lower == "no-store" || lower == "no-cache" {
                maxAge = 0
            } else if lower.hasPrefix("max-age="), let seconds = Double(lower.dropFirst("max-age=".count)) {
                maxAge = seconds
            }
        }
        let wanted = maxAge ?? 300
        return min(max(wanted, self.issuer.jwksMinCacheSeconds), self.issuer.jwksMaxCacheSeconds)
    }
}
