import Benchmark
import Crypto
import CryptoExtras
@_spi(Benchmarks) import EthicalGateway
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// JWT verification per algorithm, cold (a token the loop's cache has not seen: parse, prechecks,
/// key lookup, jwt-kit's signature check, claims) and through the verified-token cache (SHA-256
/// of the token and a lookup), as the auth filter runs them; and the whole auth filter on a
/// request whose token is cached (the common case: bearer token from the headers, cache, policy).
///
/// Keys are made at start and tokens signed with swift-crypto directly, not with jwt-kit, so
/// the tokens do not come from the code that checks them.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        maxDuration: .seconds(2)
    )
    let lab = TokenLab()
    // One loop of its own, so the filter benchmarks run where the authenticator keeps a cache.
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let eventLoop = group.next()
    let (authenticator, route) = lab.authenticator(eventLoopGroup: group)
    let filter = authenticator.authFilter(for: route)
    for algorithm in TokenLab.Algorithm.allCases {
        let token = lab.token(algorithm)
        Benchmark("verify cold \(algorithm.rawValue)") { benchmark in
            for _ in benchmark.scaledIterations {
                guard await authenticator.verifyUncached(token) else { fatalError("\(algorithm) token refused") }
            }
        }
        let cache = TokenCacheProbe(authenticator: authenticator)
        Benchmark(
            "verify cached \(algorithm.rawValue)",
            configuration: .init(scalingFactor: .kilo),
            closure: { benchmark in
                for _ in benchmark.scaledIterations {
                    blackHole(cache.lookup(token))
                }
            },
            setup: {
                guard await cache.admit(token), cache.lookup(token) else { fatalError("\(algorithm) token refused") }
            }
        )
        let request = GatewayRequest(
            benchmarkHead: HTTPRequestHead(
                version: .http1_1,
                method: .GET,
                uri: "/orders/42",
                headers: ["host": "api.example.com", "authorization": "Bearer \(token)", "accept": "*/*"]
            ),
            host: "api.example.com",
            scheme: "https",
            remoteAddress: nil,
            eventLoop: eventLoop
        )
        Benchmark(
            "auth filter, cached \(algorithm.rawValue)",
            configuration: .init(scalingFactor: .kilo),
            closure: { benchmark in
                // The whole batch on the loop, as the gateway runs the filter: no hop per request.
                let iterations = benchmark.scaledIterations
                let admitted = try! await eventLoop.submit {
                    var admitted = 0
                    for _ in iterations {
                        var copy = request
                        if case .proceed = filter.filterRequest(&copy) { admitted += 1 }
                    }
                    return admitted
                }.get()
                guard admitted == iterations.count else { fatalError("\(algorithm) token refused") }
            },
            setup: {
                // The first request verifies the token and caches it on the loop.
                let outcome = try await eventLoop.submit {
                    var copy = request
                    return filter.filterRequest(&copy)
                }.get()
                guard case .suspend(let resolution) = outcome, case .proceed = try await resolution.get() else {
                    fatalError("\(algorithm) token refused")
                }
            }
        )
    }
}

/// Keys, their public JWKs and tokens signed with them.
struct TokenLab {
    enum Algorithm: String, CaseIterable {
        case rs256 = "RS256"
        case ps256 = "PS256"
        case es256 = "ES256"
        case eddsa = "EdDSA"
        case hs256 = "HS256"
    }

    let rsa: _RSA.Signing.PrivateKey
    let p256 = P256.Signing.PrivateKey()
    let ed25519 = Curve25519.Signing.PrivateKey()
    let secret = SymmetricKey(size: .bits256)

    init() {
        do {
            self.rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        } catch {
            fatalError("cannot make an RSA key: \(error)")
        }
    }

    /// The public keys as a JWK array: `kid` is the key type's name, as the gateway's issuers take them.
    var jwks: String {
        let rsa = try! self.rsa.publicKey.getKeyPrimitives()
        let point = self.p256.publicKey.x963Representation.dropFirst()
        let secret = self.secret.withUnsafeBytes { Data($0) }
        let keys: [[String: String]] = [
            ["kty": "RSA", "kid": "rsa", "n": base64URL(rsa.modulus), "e": base64URL(rsa.publicExponent)],
            [
                "kty": "EC", "kid": "ec256", "crv": "P-256", "x": base64URL(point.prefix(32)),
                "y": base64URL(point.suffix(32)),
            ],
            [
                "kty": "OKP", "kid": "ed25519", "crv": "Ed25519",
                "x": base64URL(self.ed25519.publicKey.rawRepresentation),
            ],
            ["kty": "oct", "kid": "hmac", "k": base64URL(secret)],
        ]
        return String(decoding: try! JSONSerialization.data(withJSONObject: keys, options: .sortedKeys), as: UTF8.self)
    }

    /// An authenticator with one issuer holding every key, configured as a user would, and the
    /// `auth` of a route that accepts its tokens.
    func authenticator(eventLoopGroup: any EventLoopGroup) -> (Authenticator, RouteAuthConfiguration) {
        let json = """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "issuers": { "bench": { "issuer": "https://issuer.bench", "audiences": ["api"],
                "algorithms": ["RS256", "PS256", "ES256", "EdDSA", "HS256"], "keys": \(self.jwks) } },
              "routes": [ { "backend": "ok", "auth": { "issuers": ["bench"] } } ],
              "backends": { "ok": { "plugin": "respond", "config": {} } } }
            """
        do {
            let configuration = try ConfigLoader.load(data: Data(json.utf8))
            let directory = URL(fileURLWithPath: NSTemporaryDirectory())
            let authenticator = try Authenticator(
                issuers: configuration.issuers,
                configDirectory: directory,
                stateDirectory: directory,
                createState: false,
                eventLoopGroup: eventLoopGroup,
                logger: Logger(label: "benchmark")
            )
            return (authenticator, configuration.routes[0].auth!)
        } catch {
            fatalError("the benchmark's issuer does not build: \(error)")
        }
    }

    /// A valid token (one hour left) signed with `algorithm`'s key.
    func token(_ algorithm: Algorithm) -> String {
        let kid: String
        switch algorithm {
        case .rs256, .ps256: kid = "rsa"
        case .es256: kid = "ec256"
        case .eddsa: kid = "ed25519"
        case .hs256: kid = "hmac"
        }
        let now = Int(Date().timeIntervalSince1970)
        let header = #"{"alg":"\#(algorithm.rawValue)","kid":"\#(kid)","typ":"JWT"}"#
        let claims =
            #"{"iss":"https://issuer.bench","aud":"api","sub":"alice","scope":"orders:read","iat":\#(now),"exp":\#(now + 3600)}"#
        let input = base64URL(Data(header.utf8)) + "." + base64URL(Data(claims.utf8))
        let data = Data(input.utf8)
        let signature: Data
        do {
            switch algorithm {
            case .rs256:
                signature = try self.rsa.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
                    .rawRepresentation
            case .ps256:
                signature = try self.rsa.signature(for: SHA256.hash(data: data), padding: .PSS).rawRepresentation
            case .es256:
                signature = try self.p256.signature(for: data).rawRepresentation
            case .eddsa:
                signature = try self.ed25519.signature(for: data)
            case .hs256:
                signature = Data(HMAC<SHA256>.authenticationCode(for: data, using: self.secret))
            }
        } catch {
            fatalError("cannot sign a \(algorithm) token: \(error)")
        }
        return input + "." + base64URL(signature)
    }
}

func base64URL<Bytes: DataProtocol>(_ bytes: Bytes) -> String {
    Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}
