import EthicalGatewayTesting
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import EthicalGateway

@Suite("Authentication: verified-token cache")
struct AuthCacheTests {
    static func issuer(lab: TokenLab) throws -> Issuer {
        let json = """
            { "issuer": "https://issuer.test", "audiences": ["api"], "algorithms": ["RS256"],
              "keys": [ \(lab.jwks["rsa"]!) ] }
            """
        let configuration = try JSONDecoder().decode(IssuerConfiguration.self, from: Data(json.utf8))
        return try Issuer(configuration, configDirectory: lab.directory.url, logger: Logger(label: "test"))
    }

    @Test("a cached token is answered by a hash and a lookup (the time each costs is in Benchmarks/: JWTVerification)")
    func cachedVersusUncached() async throws {
        let lab = try await TokenLab.shared()
        let issuer = try Self.issuer(lab: lab)
        let token = try await lab.mint(key: "rsa", alg: "RS256", claims: TokenLab.claims())
        let rounds = 200

        let clock = ContinuousClock()
        var verified: VerifiedToken?
        let uncached = try await clock.measure {
            for _ in 0..<rounds {
                let parsed = try CompactToken(token, maxBytes: 8192)
                verified = try await issuer.verify(parsed).get()
            }
        }
        let cache = VerifiedTokenCache(capacity: 100)
        let now = Date().timeIntervalSince1970
        cache.insert(try #require(verified), for: VerifiedTokenCache.key(for: token), now: now)
        var hits = 0
        let cached = clock.measure {
            for _ in 0..<rounds where cache.lookup(VerifiedTokenCache.key(for: token), now: now) != nil {
                hits += 1
            }
        }
        #expect(hits == rounds)
        let perUncached = uncached / rounds
        let perCached = cached / rounds
        // Printed for information only; speed is judged by the benchmarks, never by a timed test.
        print("auth: uncached verification \(perUncached) per token, cached \(perCached) per token (debug build)")
    }

    @Test("the cache never answers for a token past its exp, and stays bounded")
    func expiryAndBound() async throws {
        let lab = try await TokenLab.shared()
        let issuer = try Self.issuer(lab: lab)
        let now = Date().timeIntervalSince1970.rounded(.down)
        let tokens = try await lab.mint(
            (0..<3).map { _ in
                ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims(["exp": Int(now) + 100])]
            }
        )
        let cache = VerifiedTokenCache(capacity: 2)
        for token in tokens {
            let verified = try await issuer.verify(try CompactToken(token, maxBytes: 8192)).get()
            #expect(verified.expiresAt == Double(Int(now) + 100 + 30))
            cache.insert(verified, for: VerifiedTokenCache.key(for: token), now: now)
            #expect(cache.count <= 2)
        }
        let last = VerifiedTokenCache.key(for: tokens[2])
        #expect(cache.lookup(last, now: now + 130) != nil)
        #expect(cache.lookup(last, now: now + 131) == nil)
        #expect(cache.lookup(last, now: now) == nil)
    }

    @Test("the cache matches a token byte for byte, not by Unicode equivalence")
    func byteForByte() async throws {
        let lab = try await TokenLab.shared()
        let issuer = try Self.issuer(lab: lab)
        let token = try await lab.mint(key: "rsa", alg: "RS256", claims: TokenLab.claims())
        let verified = try await issuer.verify(try CompactToken(token, maxBytes: 8192)).get()
        let cache = VerifiedTokenCache(capacity: 10)
        let now = Date().timeIntervalSince1970
        cache.insert(verified, for: VerifiedTokenCache.key(for: token), now: now)
        let copy = String(decoding: Array(token.utf8), as: UTF8.self)
        #expect(cache.lookup(VerifiedTokenCache.key(for: copy), now: now) != nil)
        // U+212A KELVIN SIGN and U+037E GREEK QUESTION MARK are canonically equivalent to `K`
        // and `;`: equal as Swift strings, different credentials.
        let variants = [token + "K", token + ";", token + "\u{212A}", token + "\u{037E}"]
        #expect(variants[0] == variants[2] && variants[1] == variants[3], "String equality is canonical equivalence")
        cache.insert(verified, for: VerifiedTokenCache.key(for: variants[0]), now: now)
        cache.insert(verified, for: VerifiedTokenCache.key(for: variants[1]), now: now)
        #expect(cache.lookup(VerifiedTokenCache.key(for: variants[2]), now: now) == nil)
        #expect(cache.lookup(VerifiedTokenCache.key(for: variants[3]), now: now) == nil)
        #expect(cache.lookup(VerifiedTokenCache.key(for: variants[0]), now: now) != nil)
        #expect(cache.lookup(VerifiedTokenCache.key(for: String(token.dropLast())), now: now) == nil)
    }

    @Test("refusals are counted per issuer and category")
    func refusalCounters() async throws {
        let lab = try await TokenLab.shared()
        let json = plainConfig(
            routes: #"[ { "backend": "ok", "auth": { "issuers": ["local"] } } ]"#,
            backends: #"{ "ok": { "plugin": "respond", "config": {} } }"#,
            extra: """
                "issuers": { "local": { "issuer": "https://issuer.test", "audiences": ["api"],
                                        "keys": [ \(lab.jwks["rsa"]!) ] } }
                """
        )
        let configuration = try ConfigLoader.load(data: Data(json.utf8))
        let metrics = GatewayMetrics()
        let authenticator = try Authenticator(
            issuers: configuration.issuers,
            configDirectory: lab.directory.url,
            stateDirectory: lab.directory.url,
            createState: false,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "test"),
            metrics: metrics
        )
        let filter = AuthFilter(
            policy: RoutePolicy(try #require(configuration.routes.first?.auth)),
            authenticator: authenticator
        )
        let tokens = try await lab.mint([
            ["key": "none", "alg": "none", "claims": TokenLab.claims()],
            ["key": "rsa", "alg": "RS256", "headers": ["jku": "https://evil.test"], "claims": TokenLab.claims()],
        ])
        // A loop the authenticator keeps no cache for, so the test thread touches no loop's state.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let eventLoop = group.next()
        for authorization in [nil, "Bearer abc", "Bearer \(tokens[0])", "Bearer \(tokens[1])", "Bearer abc"] {
            var headers = HTTPHeaders()
            if let authorization { headers.add(name: "Authorization", value: authorization) }
            var request = GatewayRequest(
                head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: headers),
                originalURI: "/",
                path: "/",
                query: nil,
                host: nil,
                requestID: "test",
                scheme: "http",
                remoteAddress: nil,
                routeName: "routes[0]",
                eventLoop: eventLoop,
                baseLogger: Logger(label: "test")
            )
            guard case .respond(let response) = filter.filterRequest(&request) else {
                Issue.record("\(authorization ?? "no token") was not refused synchronously")
                continue
            }
            #expect(response.status == .unauthorized)
        }
        try await group.shutdownGracefully()
        let exposition = metrics.registry.emitToString()
        for (reason, count) in [("missing", 1), ("malformed", 2), ("algorithm", 1), ("header", 1)] {
            #expect(
                exposition.contains(#"gateway_auth_refusals_total{issuer="local",reason="\#(reason)"} \#(count)"#),
                "\(exposition)"
            )
        }
        #expect(exposition.components(separatedBy: "gateway_auth_refusals_total{").count - 1 == 4)
    }
}
