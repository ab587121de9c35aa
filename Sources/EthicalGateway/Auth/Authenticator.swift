public import Foundation
public import Logging
public import NIOCore

/// Every issuer of one configuration and the per-event-loop caches of verified tokens:
/// built with the runtime, shared by the auth filters of all routes.
public final class Authenticator: Sendable {
    let issuers: [String: Issuer]
    private let caches: [ObjectIdentifier: LoopTokenCache]
    /// Where refusals are counted (`gateway_auth_refusals_total{issuer,reason}`).
    private let metrics: GatewayMetrics?

    /// Verified tokens kept per event loop.
    static let cacheCapacity = 10_000

    /// Builds every issuer; throws ``ConfigValidationError`` with an issue per broken issuer.
    public init(
        issuers configurations: [String: IssuerConfiguration],
        configDirectory: URL,
        stateDirectory: URL,
        createState: Bool,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        metrics: GatewayMetrics? = nil
    ) throws {
        var issuers: [String: Issuer] = [:]
        var issues: [ConfigIssue] = []
        for (name, configuration) in configurations.sorted(by: { $0.key < $1.key }) {
            do {
                issuers[name] = try Issuer(
                    configuration,
                    configDirectory: configDirectory,
                    stateDirectory: stateDirectory,
                    createState: createState,
                    logger: logger,
                    metrics: metrics
                )
            } catch {
                issues.append(error.issue)
            }
        }
        guard issues.isEmpty else { throw ConfigValidationError(issues) }
        self.issuers = issuers
        self.metrics = metrics
        var caches: [ObjectIdentifier: LoopTokenCache] = [:]
        for eventLoop in eventLoopGroup.makeIterator() {
            caches[ObjectIdentifier(eventLoop)] = LoopTokenCache(VerifiedTokenCache(capacity: Self.cacheCapacity))
        }
        self.caches = caches
    }

    /// The cache of the loop a request runs on.
    func cache(for eventLoop: any EventLoop) -> LoopTokenCache? {
        self.caches[ObjectIdentifier(eventLoop)]
    }

    /// Counts a refusal in `gateway_auth_refusals_total`; accepted requests count nothing.
    func count(_ refusal: TokenRefusal, issuer: String?) {
        self.metrics?.countAuthRefusal(issuer: issuer ?? "-", reason: refusal.category.rawValue)
    }

    /// How many times an issuer's key set has been fetched (0 for fixed keys).
    public func keyFetchCount(issuer name: String) -> Int {
        self.issuers[name]?.keySource.fetchCount ?? 0
    }
}
