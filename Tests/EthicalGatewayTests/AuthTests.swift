import EthicalGateway
import EthicalGatewayTesting
import Foundation
import JWTKit
import NIOConcurrencyHelpers
import Testing

@testable import ethical_gateway

/// The shared token lab's folder, removed at exit.
private let sharedLabPath = NIOLockedValueBox<String?>(nil)

/// Keys and tokens made by PyJWT (`Fixtures/jwt_fixture.py`), an implementation independent of
/// jwt-kit, so the gateway is checked against tokens it did not make itself.
struct TokenLab: Sendable {
    let directory: TemporaryDirectory
    /// Public JWKs by key name: `rsa`, `rsa2`, `ec256`, `ec384`, `ec521`, `ed25519` (each with `kid` = name, no `alg`).
    let jwks: [String: String]
    /// A 64-byte HMAC secret (long enough for HS512), base64url.
    let secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg"

    static let script = repositoryRoot.appendingPathComponent("Tests/EthicalGatewayTests/Fixtures/jwt_fixture.py")

    /// The keys of this test run: made once (key generation is the slow part), shared by every
    /// test, and removed when the test process exits.
    static func shared() async throws -> TokenLab {
        try await sharedLab.value
    }

    private static let sharedLab = Task {
        let lab = try await TokenLab()
        sharedLabPath.withLockedValue { $0 = lab.directory.url.path }
        atexit {
            if let path = sharedLabPath.withLockedValue({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
        }
        return lab
    }

    private init() async throws {
        self.directory = try TemporaryDirectory(prefix: "tokens")
        let output = try await ProcessRunner.run("python3", [Self.script.path, "keys", self.directory.url.path])
        guard output.exitCode == 0,
            let object = try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any]
        else {
            throw ProcessRunnerError(message: "jwt_fixture.py keys failed: \(output.standardError)")
        }
        self.jwks = try object.mapValues {
            String(decoding: try JSONSerialization.data(withJSONObject: $0, options: .sortedKeys), as: UTF8.self)
        }
    }

    /// One token per spec: `key` (a key name, `secret`, `none` or `raw:<file>`), `alg`,
    /// extra `headers` (`"kid": nil` removes it) and `claims` merged over ``claims(_:)``'s defaults.
    func mint(_ specs: [[String: Any]]) async throws -> [String] {
        let specs = specs.map { spec -> [String: Any] in
            var spec = spec
            if spec["key"] as? String == "secret" { spec["key"] = "secret:\(self.secret)" }
            return spec
        }
        let input = String(decoding: try JSONSerialization.data(withJSONObject: specs), as: UTF8.self)
        let output = try await ProcessRunner.run(
            "python3",
            [Self.script.path, "mint", self.directory.url.path],
            standardInput: input
        )
        guard output.exitCode == 0 else {
            throw ProcessRunnerError(message: "jwt_fixture.py mint failed: \(output.standardError)")
        }
        return output.standardOutput.split(separator: "\n").map(String.init)
    }

    func mint(
        key: String,
        alg: String,
        headers: [String: Any] = [:],
        claims: [String: Any] = [:]
    ) async throws
        -> String
    {
        try await self.mint([["key": key, "alg": alg, "headers": headers, "claims": claims]])[0]
    }

    /// Valid claims for the `local` issuer of ``AuthTests/config``, with `overrides`.
    static func claims(_ overrides: [String: Any] = [:], issuer: String = "https://issuer.test") -> [String: Any] {
        let now = Int(Date().timeIntervalSince1970)
        var claims: [String: Any] = [
            "iss": issuer, "aud": "api", "sub": "alice", "iat": now, "exp": now + 600,
            "jti": UUID().uuidString,
        ]
        for (key, value) in overrides { claims[key] = value }
        return claims
    }

}

@Suite("Authentication")
struct AuthTests {
    /// Issuers with fixed keys and one route per policy, all answered by a `respond` backend.
    static func config(lab: TokenLab, extraRoutes: String = "", extraBackends: String = "") -> String {
        let keys = ["rsa", "ec256", "ec384", "ec521", "ed25519"].map { lab.jwks[$0]! }.joined(separator: ", ")
        return """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "issuers": {
                "local": { "issuer": "https://issuer.test", "audiences": ["api"], "leewaySeconds": 0,
                           "algorithms": ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                                          "ES512", "EdDSA", "HS256", "HS512"],
                           "keys": [ \(keys), { "kty": "oct", "kid": "hmac", "k": "\(lab.secret)" } ] },
                "typed": { "issuer": "https://typed.test", "audiences": ["api"], "algorithms": ["ES256"],
                           "requiredType": "at+jwt", "maxLifetimeSeconds": 3600, "keys": [ \(lab.jwks["ec256"]!) ] }
              },
              "routes": [
                { "match": { "path": "/open" }, "backend": "ok", "auth": { "issuers": ["local", "typed"] } },
                { "match": { "path": "/scoped" }, "backend": "ok",
                  "auth": { "issuers": ["local"], "scopes": ["orders:read"] } },
                { "match": { "path": "/claims" }, "backend": "ok",
                  "auth": { "issuers": ["local"], "claims": { "org.tier": { "oneOf": ["gold", "silver"] },
                            "roles": { "contains": "admin" }, "tenant": { "equals": "acme" } } } },
                { "match": { "path": "/anon" }, "backend": "ok", "auth": { "issuers": ["local"], "anonymous": true } },
                { "match": { "path": "/cookie" }, "backend": "ok",
                  "auth": { "issuers": ["local"], "cookie": "session" } }\(extraRoutes)
              ],
              "backends": { "ok": { "plugin": "respond", "config": { "status": 200, "body": "ok" } }\(extraBackends) } }
            """
    }

    static func get(
        _ gateway: LiveGateway,
        _ path: String,
        token: String? = nil,
        _ extra: [String] = []
    )
        async throws -> CurlResponse
    {
        let authorization = token.map { ["-H", "Authorization: Bearer \($0)"] } ?? []
        return try await Curl.request("http://127.0.0.1:\(gateway.port("http"))\(path)", authorization + extra)
    }

    /// One request per token from a single curl process (`--parallel`), so a flood of requests
    /// costs one process rather than one each. Answers come back in the order of `tokens`.
    static func flood(
        _ gateway: LiveGateway,
        _ path: String,
        tokens: [String],
        parallel: Int = 50
    ) async throws
        -> [(status: Int, challenge: String)]
    {
        var arguments = ["--parallel", "--parallel-max", "\(min(tokens.count, parallel))"]
        for (offset, token) in tokens.enumerated() {
            if offset > 0 { arguments.append("--next") }
            arguments += [
                "-s", "--max-time", "20", "-o", "/dev/null", "-H", "Authorization: Bearer \(token)", "-w",
                "%{url_effective} %{http_code} %header{www-authenticate}\\n",
                "http://127.0.0.1:\(gateway.port("http"))\(path)?request=\(offset)",
            ]
        }
        let output = try await ProcessRunner.run("curl", arguments, timeout: 40)
        var answers: [Int: (status: Int, challenge: String)] = [:]
        for line in output.standardOutput.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count >= 2, let equals = fields[0].lastIndex(of: "="),
                let offset = Int(fields[0][fields[0].index(after: equals)...])
            else { continue }
            answers[offset] = (Int(fields[1]) ?? 0, fields.count > 2 ? String(fields[2]) : "")
        }
        return tokens.indices.compactMap { answers[$0] }
    }

    @Test("every algorithm family is accepted with its key, from PyJWT and from jwt-kit")
    func algorithmFamilies() async throws {
        let lab = try await TokenLab.shared()
        let families: [(key: String, alg: String, kid: String?)] = [
            ("rsa", "RS256", nil), ("rsa", "RS384", nil), ("rsa", "RS512", nil), ("rsa", "PS256", nil),
            ("rsa", "PS384", nil), ("rsa", "PS512", nil), ("ec256", "ES256", nil), ("ec384", "ES384", nil),
            ("ec521", "ES512", nil),
            ("ed25519", "EdDSA", nil), ("secret", "HS256", "hmac"), ("secret", "HS512", "hmac"),
        ]
        let tokens = try await lab.mint(
            families.map { family in
                [
                    "key": family.key, "alg": family.alg, "headers": family.kid.map { ["kid": $0] } ?? [:],
                    "claims": TokenLab.claims(),
                ] as [String: Any]
            }
        )
        let jwtKit = JWTKeyCollection()
        let secret = Data(base64Encoded: lab.secret.padding(toLength: 88, withPad: "=", startingAt: 0))!
        await jwtKit.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: "hmac")
        let now = Date()
        let jwtKitToken = try await jwtKit.sign(
            TestClaims(
                iss: "https://issuer.test",
                aud: "api",
                sub: "bob",
                exp: Int(now.timeIntervalSince1970) + 600
            ),
            kid: "hmac"
        )
        try await LiveGateway.with(config: Self.config(lab: lab), registry: gatewayRegistry) { gateway in
            for (family, token) in zip(families, tokens) {
                let response = try await Self.get(gateway, "/open", token: token)
                #expect(response.status == 200, "\(family.alg): \(response.header("www-authenticate") ?? "")")
            }
            let response = try await Self.get(gateway, "/open", token: jwtKitToken)
            #expect(response.status == 200, "jwt-kit token: \(response.header("www-authenticate") ?? "")")
        }
    }

    @Test("a key without alg verifies PS256 and then RS256 tokens (jwt-kit alone would lock it to PS256)")
    func keyWithoutAlgorithmIsBoundDeterministically() async throws {
        let lab = try await TokenLab.shared()
        let tokens = try await lab.mint([
            ["key": "rsa", "alg": "PS256", "claims": TokenLab.claims()],
            ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims()],
            ["key": "rsa", "alg": "PS384", "claims": TokenLab.claims()],
        ])
        try await LiveGateway.with(config: Self.config(lab: lab), registry: gatewayRegistry) { gateway in
            for token in tokens {
                let response = try await Self.get(gateway, "/open", token: token)
                #expect(response.status == 200, "\(response.header("www-authenticate") ?? "")")
            }
        }
    }

    @Test("tokens that are never accepted are refused with the reason")
    func neverAccepted() async throws {
        let lab = try await TokenLab.shared()
        let now = Int(Date().timeIntervalSince1970)
        let typedClaims = TokenLab.claims(issuer: "https://typed.test")
        let cases: [(name: String, spec: [String: Any], reason: String)] = [
            ("alg none", ["key": "none", "alg": "none", "claims": TokenLab.claims()], "alg none"),
            (
                "alg not allowed", ["key": "rsa", "alg": "RS256", "headers": ["typ": "at+jwt"], "claims": typedClaims],
                "algorithm RS256 is not allowed for this issuer"
            ),
            (
                "HMAC with the RSA public key",
                ["key": "raw:rsa.pub.pem", "alg": "HS256", "headers": ["kid": "rsa"], "claims": TokenLab.claims()],
                "algorithm HS256 does not fit key \"rsa\""
            ),
            (
                "ES256 with the P-384 key",
                [
                    "key": "ec256", "alg": "ES256", "headers": ["kid": "ec384"],
                    "claims": TokenLab.claims(),
                ], "algorithm ES256 does not fit key \"ec384\""
            ),
            (
                "unknown crit",
                [
                    "key": "rsa", "alg": "RS256", "headers": ["crit": ["urn:x"], "urn:x": 1],
                    "claims": TokenLab.claims(),
                ], "unsupported critical parameter \"urn:x\""
            ),
            (
                "jku",
                [
                    "key": "rsa", "alg": "RS256", "headers": ["jku": "https://evil.test/keys"],
                    "claims": TokenLab.claims(),
                ], "names its own key (\"jku\")"
            ),
            (
                "x5u",
                [
                    "key": "rsa", "alg": "RS256", "headers": ["x5u": "https://evil.test/cert"],
                    "claims": TokenLab.claims(),
                ], "names its own key (\"x5u\")"
            ),
            (
                "embedded jwk",
                [
                    "key": "rsa", "alg": "RS256", "headers": ["jwk": ["kty": "oct", "k": "AAAA"]],
                    "claims": TokenLab.claims(),
                ], "names its own key (\"jwk\")"
            ),
            (
                "unknown kid", ["key": "rsa", "alg": "RS256", "headers": ["kid": "nope"], "claims": TokenLab.claims()],
                "unknown key id \"nope\""
            ),
            ("expired", ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims(["exp": now - 5])], "expired at"),
            (
                "not yet valid", ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims(["nbf": now + 600])],
                "not valid before"
            ),
            (
                "wrong issuer",
                ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims(issuer: "https://other.test")],
                "tokens from issuer https://other.test are not accepted here"
            ),
            (
                "wrong audience",
                ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims(["aud": ["web", "mobile"]])],
                "audience mismatch"
            ),
            (
                "no exp", ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims(["exp": NSNull()])],
                "no numeric \"exp\""
            ),
            (
                "wrong typ", ["key": "ec256", "alg": "ES256", "headers": ["typ": "JWT"], "claims": typedClaims],
                "type (\"typ\") is not at+jwt"
            ),
            (
                "lifetime too long",
                [
                    "key": "ec256", "alg": "ES256", "headers": ["typ": "at+jwt"],
                    "claims": TokenLab.claims(["exp": now + 7200], issuer: "https://typed.test"),
                ], "exceeds the maximum"
            ),
        ]
        var tokens = try await lab.mint(cases.map(\.spec))
        var expectations = cases.map { ($0.name, $0.reason) }

        let good = try await lab.mint(key: "rsa", alg: "RS256", claims: TokenLab.claims())
        let other = try await lab.mint(key: "rsa", alg: "RS256", claims: TokenLab.claims(["sub": "mallory"]))
        let goodParts = good.split(separator: ".")
        let otherParts = other.split(separator: ".")
        tokens.append("\(goodParts[0]).\(otherParts[1]).\(goodParts[2])")
        expectations.append(("bad signature", "signature is invalid"))
        tokens.append("abc.d$f.ghi")
        expectations.append(("malformed base64", "not valid base64url"))
        tokens.append("eyJub3QganNvbg.\(goodParts[1]).\(goodParts[2])")
        expectations.append(("malformed JSON", "header is not a JSON object"))
        tokens.append(String(repeating: "a", count: 9000))
        expectations.append(("too long", "longer than 8192 bytes"))
        tokens.append("\(goodParts[0]).\(goodParts[1])")
        expectations.append(("two parts", "not a JWS"))

        try await LiveGateway.with(config: Self.config(lab: lab), registry: gatewayRegistry) { gateway in
            let responses = try await Self.flood(gateway, "/open", tokens: tokens)
            try #require(responses.count == tokens.count)
            for ((name, reason), response) in zip(expectations, responses) {
                #expect(response.status == 401, "\(name): \(response.status) \(response.challenge)")
                #expect(
                    response.challenge.hasPrefix("Bearer realm=\"ethical-gateway\", error=\"invalid_token\""),
                    "\(name)"
                )
                // A quoted string in a challenge cannot hold `"`, so the header shows `'` instead.
                #expect(
                    response.challenge.contains(reason.replacingOccurrences(of: "\"", with: "'")),
                    "\(name): \(response.challenge)"
                )
            }
            let expired = try await Self.get(
                gateway,
                "/open",
                token: tokens[cases.firstIndex { $0.name == "expired" }!]
            )
            #expect(expired.bodyText.contains(#""status":401,"detail":"the token expired at "#))
            let missing = try await Self.get(gateway, "/open")
            #expect(missing.status == 401)
            #expect(missing.header("www-authenticate") == "Bearer realm=\"ethical-gateway\"")
            let doubled = try await Self.get(
                gateway,
                "/open",
                token: good,
                ["-H", "Authorization: Bearer \(good)"]
            )
            #expect(doubled.status == 400)
            #expect(doubled.header("www-authenticate")?.contains("error=\"invalid_request\"") == true)
        }
    }

    @Test("scopes, claim rules, anonymous access and the cookie source")
    func routePolicies() async throws {
        let lab = try await TokenLab.shared()
        let claimsOK = TokenLab.claims(["org": ["tier": "gold"], "roles": ["ops", "admin"], "tenant": "acme"])
        let tokens = try await lab.mint([
            ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims(["scope": "orders:write orders:read"])],
            ["key": "ec256", "alg": "ES256", "claims": TokenLab.claims(["scp": ["orders:read"]])],
            ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims(["scope": "orders:write"])],
            ["key": "rsa", "alg": "RS256", "claims": claimsOK],
            [
                "key": "rsa", "alg": "RS256",
                "claims": TokenLab.claims(["org": ["tier": "bronze"], "roles": ["admin"], "tenant": "acme"]),
            ],
            ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims(["exp": 1000])],
            [
                "key": "ec256", "alg": "ES256", "headers": ["typ": "at+jwt"],
                "claims": TokenLab.claims(["scope": "orders:read"], issuer: "https://typed.test"),
            ],
        ])
        try await LiveGateway.with(config: Self.config(lab: lab), registry: gatewayRegistry) { gateway in
            #expect(try await Self.get(gateway, "/scoped", token: tokens[0]).status == 200)
            #expect(try await Self.get(gateway, "/scoped", token: tokens[1]).status == 200)
            let lacking = try await Self.get(gateway, "/scoped", token: tokens[2])
            #expect(lacking.status == 403)
            #expect(
                lacking.header("www-authenticate")
                    == "Bearer realm=\"ethical-gateway\", error=\"insufficient_scope\", "
                    + "error_description=\"the token lacks the scope orders:read\", scope=\"orders:read\""
            )
            let otherIssuer = try await Self.get(gateway, "/scoped", token: tokens[6])
            #expect(otherIssuer.status == 401)
            #expect(otherIssuer.header("www-authenticate")?.contains("https://typed.test are not accepted") == true)

            #expect(try await Self.get(gateway, "/claims", token: tokens[3]).status == 200)
            let bronze = try await Self.get(gateway, "/claims", token: tokens[4])
            #expect(bronze.status == 403)
            #expect(
                bronze.header("www-authenticate")?.contains("claim org.tier does not have an accepted value") == true
            )

            #expect(try await Self.get(gateway, "/anon").status == 200)
            #expect(try await Self.get(gateway, "/anon", token: tokens[0]).status == 200)
            let expiredAnonymous = try await Self.get(gateway, "/anon", token: tokens[5])
            #expect(expiredAnonymous.status == 401)

            #expect(try await Self.get(gateway, "/cookie", ["-H", "Cookie: a=b; session=\(tokens[0])"]).status == 200)
            #expect(try await Self.get(gateway, "/cookie", ["-H", "Cookie: a=b"]).status == 401)
            #expect(try await Self.get(gateway, "/open", ["-H", "Cookie: session=\(tokens[0])"]).status == 401)
        }
    }

    @Test("chosen claims reach the upstream as headers; spoofed ones and Authorization are removed")
    func claimHeaders() async throws {
        let lab = try await TokenLab.shared()
        let upstream = try await TestUpstream(name: "app")
        let token = try await lab.mint(
            key: "rsa",
            alg: "RS256",
            claims: TokenLab.claims(["roles": ["admin", "ops"], "org": ["tier": "gold", "id": 42]])
        )
        let route = """
            { "match": { "pathPrefix": "/app" }, "backend": "app",
              "auth": { "issuers": ["local"], "anonymous": true, "forwardAuthorization": false,
                        "claimHeaders": { "X-User": "sub", "X-Roles": "roles", "X-Tier": "org.tier", "X-Org": "org" },
                        "payloadHeader": "X-Token-Payload" } }
            """
        let config = Self.config(
            lab: lab,
            extraRoutes: ",\n" + route,
            extraBackends:
                #", "app": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "\#(upstream.url)" } ] } }"#
        )
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            let spoof = ["-H", "X-User: mallory", "-H", "x-roles: root", "-H", "X-Token-Payload: e30"]
            let verified = try await Self.get(gateway, "/app/a", token: token, spoof)
            let anonymous = try await Self.get(gateway, "/app/b", spoof)
            #expect(verified.status == 200)
            #expect(anonymous.status == 200)
            // The client's connection options name the claim headers, a field it sent, and the
            // framing and host: only its own field goes (RFC 9110 7.6.1); what the gateway set
            // from the token, Host and the body's length stay.
            let named = try await Self.get(
                gateway,
                "/app/c",
                token: token,
                [
                    "-H", "Connection: keep-alive, X-User, x-token-payload, X-Mine, content-length, Host",
                    "-H", "X-Mine: mine", "--data-binary", "four",
                ]
            )
            #expect(named.status == 200)
        }
        let requests = upstream.requests
        try #require(requests.count == 3)
        let named = requests[2]
        #expect(named.headers("x-user") == ["alice"])
        #expect(named.headers("x-token-payload") == [String(token.split(separator: ".")[1])])
        #expect(named.headers("x-mine").isEmpty)
        #expect(named.bodyBytes == 4 && named.header("content-length") == "4")
        #expect(named.header("host") != nil)
        let verified = requests[0]
        #expect(verified.headers("x-user") == ["alice"])
        #expect(verified.headers("x-roles") == ["admin, ops"])
        #expect(verified.headers("x-tier") == ["gold"])
        #expect(verified.headers("x-org") == [#"{"id":42,"tier":"gold"}"#])
        #expect(verified.headers("x-token-payload") == [String(token.split(separator: ".")[1])])
        #expect(verified.header("authorization") == nil)
        let anonymous = requests[1]
        #expect(anonymous.headers("x-user").isEmpty)
        #expect(anonymous.headers("x-roles").isEmpty)
        #expect(anonymous.headers("x-token-payload").isEmpty)
    }

    @Test("a token in the query parameter (WebSocket clients) is accepted and never reaches the backend")
    func queryParameterToken() async throws {
        let lab = try await TokenLab.shared()
        let upstream = try await TestUpstream(name: "app")
        let token = try await lab.mint(key: "rsa", alg: "RS256", claims: TokenLab.claims())
        let route = """
            { "match": { "pathPrefix": "/live" }, "backend": "app",
              "auth": { "issuers": ["local"], "queryParameter": "access_token", "claimHeaders": { "X-User": "sub" } } }
            """
        let config = Self.config(
            lab: lab,
            extraRoutes: ",\n" + route,
            extraBackends:
                #", "app": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "\#(upstream.url)" } ] } }"#
        )
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            let withOthers = try await Self.get(gateway, "/live/feed?room=1&access_token=\(token)&since=5")
            let alone = try await Self.get(gateway, "/live/feed?access_token=\(token)")
            let bad = try await Self.get(gateway, "/live/feed?access_token=not.a.token")
            let missing = try await Self.get(gateway, "/live/feed?room=1")
            #expect(withOthers.status == 200 && alone.status == 200)
            #expect(bad.status == 401 && missing.status == 401)
            // A second spelling of the parameter beside the checked one would reach a backend
            // that reads the last value or names in any case: refused, whatever the spelling.
            for smuggled in ["access_token=EVIL", "ACCESS_TOKEN=EVIL", "access%5Ftoken=EVIL", "access_token=%ZZ"] {
                let response = try await Self.get(gateway, "/live/feed?access_token=\(token)&\(smuggled)")
                #expect(response.status == 400, "\(smuggled): \(response.status)")
                #expect(response.header("www-authenticate")?.contains("invalid_request") == true, "\(smuggled)")
            }
            // Another case alone is the parameter too: taken out, and checked.
            let upper = try await Self.get(gateway, "/live/feed?Access_Token=\(token)&room=2")
            #expect(upper.status == 200)
        }
        let requests = upstream.requests
        try #require(requests.count == 3)
        #expect(requests[0].uri == "/live/feed?room=1&since=5")
        #expect(requests[1].uri == "/live/feed")
        #expect(requests[2].uri == "/live/feed?room=2")
        #expect(requests.allSatisfy { $0.header("x-user") == "alice" && !$0.uri.contains("access_token") })
    }

    @Test("a cached token stops working at its exp")
    func cacheExpiresAtExp() async throws {
        let lab = try await TokenLab.shared()
        try await LiveGateway.with(config: Self.config(lab: lab), registry: gatewayRegistry) { gateway in
            // Minted in-process once the gateway runs, so the lifetime is not eaten by start-up.
            let keys = JWTKeyCollection()
            let secret = Data(base64Encoded: lab.secret.padding(toLength: 88, withPad: "=", startingAt: 0))!
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: "hmac")
            // Long enough that a loaded machine answers the first requests before it (10 s was
            // not, with the whole suite running on two cores).
            let expiry = Double(Int(Date().timeIntervalSince1970) + 25)
            let token = try await keys.sign(
                TestClaims(iss: "https://issuer.test", aud: "api", sub: "carol", exp: Int(expiry)),
                kid: "hmac"
            )
            var accepted = 0
            var refused: CurlResponse?
            let deadline = Date(timeIntervalSince1970: expiry + 20)
            while refused == nil && Date() < deadline {
                let sent = Date().timeIntervalSince1970
                let response = try await Self.get(gateway, "/open", token: token)
                if response.status == 200 {
                    // Whenever the gateway decided, it was after `sent`: a 200 for a request sent
                    // after exp would be a token served past its expiry.
                    #expect(sent <= expiry, "accepted a request sent \(sent - expiry) s after exp")
                    accepted += 1
                    try await Task.sleep(for: .milliseconds(200))
                } else {
                    refused = response
                }
            }
            #expect(accepted >= 2, "the token was never answered from the cache before it expired")
            #expect(Date().timeIntervalSince1970 >= expiry)
            #expect(refused?.status == 401)
            #expect(refused?.header("www-authenticate")?.contains("the token expired at") == true)
        }
    }

    @Test("two issuers with one iss value: the route's first listed decides, whether the token is cached or not")
    func sharedIssuerValue() async throws {
        let lab = try await TokenLab.shared()
        // `other` claims the same `iss` as `local` but holds another key: on /other-first it
        // decides (and refuses a token signed with `local`'s RSA key); on /local-only `local`
        // accepts that token and caches it. The cache must not carry the acceptance over.
        let config = """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "issuers": {
                "local": { "issuer": "https://issuer.test", "audiences": ["api"], "algorithms": ["RS256", "ES256"],
                           "keys": [ \(lab.jwks["rsa"]!) ] },
                "other": { "issuer": "https://issuer.test", "audiences": ["api"], "algorithms": ["RS256", "ES256"],
                           "keys": [ \(lab.jwks["ec256"]!) ] }
              },
              "routes": [
                { "match": { "path": "/local-only" }, "backend": "ok", "auth": { "issuers": ["local"] } },
                { "match": { "path": "/other-first" }, "backend": "ok", "auth": { "issuers": ["other", "local"] } },
                { "match": { "path": "/local-first" }, "backend": "ok", "auth": { "issuers": ["local", "other"] } }
              ],
              "backends": { "ok": { "plugin": "respond", "config": { "status": 200, "body": "ok" } } } }
            """
        let rsaToken = try await lab.mint(key: "rsa", alg: "RS256", claims: TokenLab.claims())
        let ecToken = try await lab.mint(key: "ec256", alg: "ES256", claims: TokenLab.claims())
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            // (path, token, expected status), uncached first, then each again once the token is cached.
            let cases: [(String, String, Int)] = [
                ("/other-first", rsaToken, 401), ("/local-only", rsaToken, 200), ("/local-first", rsaToken, 200),
                ("/other-first", rsaToken, 401),
                // And the other way round: `other` accepts the EC token, `local` (listed first) refuses it.
                ("/other-first", ecToken, 200), ("/local-first", ecToken, 401), ("/local-only", ecToken, 401),
            ]
            for round in 0..<2 {
                for (path, token, expected) in cases {
                    let status = try await Self.get(gateway, path, token: token).status
                    #expect(status == expected, "round \(round), \(path)")
                }
            }
        }
    }

    @Test("dev-token mints a token the development issuer accepts; its key persists in the state folder")
    func developmentIssuer() async throws {
        let config = """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "issuers": { "dev": { "issuer": "https://localhost/dev", "audiences": ["gw"], "development": true } },
              "routes": [ { "backend": "ok", "auth": { "issuers": ["dev"], "scopes": ["demo"],
                            "claimHeaders": { "X-User": "sub" } } } ],
              "backends": { "ok": { "plugin": "respond", "config": { "status": 200, "body": "ok" } } } }
            """
        #expect(DevTokenCommand.seconds("90") == 90)
        #expect(DevTokenCommand.seconds("30m") == 1800)
        #expect(DevTokenCommand.seconds("1h") == 3600)
        #expect(DevTokenCommand.seconds("2d") == 172_800)
        #expect(DevTokenCommand.seconds("soon") == nil)
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            let keyFile = gateway.directory.url.appendingPathComponent("state/development-issuer-dev.pem")
            #expect(FileManager.default.fileExists(atPath: keyFile.path))
            let permissions = try FileManager.default.attributesOfItem(atPath: keyFile.path)[.posixPermissions] as? Int
            #expect(permissions == 0o600)
            let configuration = try ConfigLoader.load(
                fileAt: gateway.directory.url.appendingPathComponent("gateway.json")
            )
            func mint(scope: String?, ttl: Double = 600) async throws -> String {
                try await DevelopmentIssuer.mint(
                    configuration: configuration,
                    configDirectory: gateway.directory.url,
                    issuerName: nil,
                    subject: "alice",
                    scope: scope,
                    lifetimeSeconds: ttl
                )
            }
            #expect(try await Self.get(gateway, "/", token: try await mint(scope: "demo other")).status == 200)
            let unscoped = try await Self.get(gateway, "/", token: try await mint(scope: nil))
            #expect(unscoped.status == 403)
            await #expect(throws: DevelopmentTokenError.self) {
                try await DevelopmentIssuer.mint(
                    configuration: configuration,
                    configDirectory: gateway.directory.url,
                    issuerName: "prod",
                    subject: "alice",
                    scope: nil,
                    lifetimeSeconds: 60
                )
            }
        }
    }

    @Test("a key no allowed algorithm fits is skipped in every source; the set fails only when none is usable")
    func unusableKeysAreSkipped() async throws {
        let lab = try await TokenLab.shared()
        let keys = "[ \(lab.jwks["ec256"]!), \(lab.jwks["ec384"]!) ]"
        let allowed = #""algorithms": ["RS256", "ES256"]"#
        let route = #"[ { "backend": "ok", "auth": { "issuers": ["x"] } } ]"#
        let backends = #"{ "ok": { "plugin": "respond", "config": {} } }"#
        let inline = plainConfig(
            routes: route,
            backends: backends,
            extra:
                #""issuers": { "x": { "issuer": "https://x.test", "audiences": ["api"], \#(allowed), "keys": \#(keys) } }"#
        )
        #expect(try await configIssues(inline).isEmpty)
        let fromFile = plainConfig(
            routes: route,
            backends: backends,
            extra:
                #""issuers": { "x": { "issuer": "https://x.test", "audiences": ["api"], \#(allowed), "jwksFile": "keys.json" } }"#
        )
        #expect(try await configIssues(fromFile, files: ["keys.json": #"{ "keys": \#(keys) }"#]).isEmpty)
        let onlyP384 = #"{ "keys": [ \#(lab.jwks["ec384"]!) ] }"#
        let unusable = try await configIssues(fromFile, files: ["keys.json": onlyP384])
        #expect(unusable.map(\.path) == ["$.issuers.x.jwksFile"])
        #expect(unusable.first?.message.contains("no allowed algorithm fits") == true)
    }

    @Test("issuer and auth configuration errors name their JSON path")
    func configurationErrors() async throws {
        func issues(_ issuers: String, auth: String) async throws -> [String] {
            let json = plainConfig(
                routes: #"[ { "backend": "ok", "auth": \#(auth) } ]"#,
                backends: #"{ "ok": { "plugin": "respond", "config": {} } }"#,
                extra: #""issuers": \#(issuers)"#
            )
            return try await configIssues(json).map { "\($0.path): \($0.message)" }
        }
        let key = #"{ "kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ" }"#
        let good =
            #"{ "x": { "issuer": "https://x.test", "audiences": ["api"], "algorithms": ["HS256"], "keys": [\#(key)] } }"#
        #expect(try await issues(good, auth: #"{ "issuers": ["x"] }"#) == [])
        #expect(
            try await issues(good, auth: #"{ "issuers": ["ghost"] }"#)
                == [#"$.routes[0].auth.issuers[0]: no issuer named "ghost" (declared issuers: x)"#]
        )
        #expect(
            try await issues(good, auth: #"{ "issuers": ["x"], "colour": 1 }"#).first?.hasPrefix(
                #"$.routes[0].auth.colour: unknown key "colour""#
            ) == true
        )
        #expect(
            try await issues(good, auth: #"{ "issuers": ["x"], "claims": { "tier": { "equals": 1, "oneOf": [1] } } }"#)
                == [#"$.routes[0].auth.claims.tier: expected exactly one of "equals", "contains" or "oneOf""#]
        )
        let twoSources =
            #"{ "x": { "issuer": "https://x.test", "audiences": ["api"], "jwksURL": "https://x.test/k", "keys": [] } }"#
        #expect(
            try await issues(twoSources, auth: #"{ "issuers": ["x"] }"#)
                == [#"$.issuers.x: expected one key source, found "jwksURL" and "keys""#]
        )
        let plainHTTP = #"{ "x": { "issuer": "https://x.test", "audiences": ["api"], "jwksURL": "http://x.test/k" } }"#
        #expect(
            try await issues(plainHTTP, auth: #"{ "issuers": ["x"] }"#)
                == [#"$.issuers.x.jwksURL: expected an https:// URL, found "http://x.test/k""#]
        )
        let hmacFromNetwork =
            #"{ "x": { "issuer": "https://x.test", "audiences": ["api"], "jwksURL": "https://x.test/k", "algorithms": ["HS256"] } }"#
        #expect(
            try await issues(hmacFromNetwork, auth: #"{ "issuers": ["x"] }"#).first?.hasPrefix(
                "$.issuers.x.algorithms: HS256 uses a shared secret, which is never taken from the network"
            ) == true
        )
        let brokenKey =
            #"{ "x": { "issuer": "https://x.test", "audiences": ["api"], "keys": [ { "kty": "RSA", "kid": "k1", "e": "AQAB" } ] } }"#
        #expect(
            try await issues(brokenKey, auth: #"{ "issuers": ["x"] }"#) == [
                #"$.issuers.x.keys: expected at least one usable signing key (skipped: key "k1": missing "n")"#
            ]
        )
        let mismatchedAlgorithm =
            #"{ "x": { "issuer": "https://x.test", "audiences": ["api"], "keys": [ { "kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "alg": "ES256" } ] } }"#
        #expect(
            try await issues(mismatchedAlgorithm, auth: #"{ "issuers": ["x"] }"#)
                == [
                    #"$.issuers.x.keys: expected at least one usable signing key (skipped: keys[0]: "alg" ES256 does not fit an EC key on curve P-384)"#
                ]
        )
        let shortSecret =
            #"{ "x": { "issuer": "https://x.test", "audiences": ["api"], "algorithms": ["HS512"], "keys": [\#(key)] } }"#
        #expect(
            try await issues(shortSecret, auth: #"{ "issuers": ["x"] }"#)
                == [
                    #"$.issuers.x.keys: expected at least one usable signing key (skipped: keys[0]: the secret is 32 bytes; HS512 needs at least 64)"#
                ]
        )
        let introspectionOnly =
            #"{ "x": { "issuer": "https://x.test", "audiences": ["api"], "introspection": { "url": "https://x.test/i", "clientID": "g", "clientSecret": "s" } } }"#
        #expect(try await issues(introspectionOnly, auth: #"{ "issuers": ["x"] }"#) == [])
        let twoSecrets =
            #"{ "x": { "issuer": "https://x.test", "audiences": ["api"], "introspection": { "url": "https://x.test/i", "clientID": "g", "clientSecret": "s", "clientSecretFile": "f" } } }"#
        #expect(
            try await issues(twoSecrets, auth: #"{ "issuers": ["x"] }"#)
                == [#"$.issuers.x.introspection: expected exactly one of "clientSecret" and "clientSecretFile""#]
        )
        let noAudience = #"{ "x": { "issuer": "https://x.test", "audiences": [], "keys": [\#(key)] } }"#
        #expect(
            try await issues(noAudience, auth: #"{ "issuers": ["x"] }"#).first?.hasPrefix("$.issuers.x.audiences:")
                == true
        )
    }
}

/// Claims for tokens minted with jwt-kit.
struct TestClaims: JWTPayload {
    var iss: String
    var aud: String
    var sub: String
    var exp: Int

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
