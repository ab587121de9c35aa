import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// Known attacks on JWT verifiers, as a table run against a live gateway whose route accepts a
/// JWKS-URL issuer (keys from a local HTTPS server that logs every request) and an issuer with
/// inline keys (including an HMAC secret). Every attack must get 401 `invalid_token`, never reach
/// the backend, and make the gateway fetch nothing beyond its first key set.
///
/// The tokens are built by `Fixtures/jwt_fixture.py forge` (Python `cryptography`, byte by byte),
/// independent of jwt-kit, so a token can be anything an attacker can send.
@Suite("JWT attack corpus")
struct JWTAttackTests {
    /// One row of the corpus: the token, the status it must get and a part of the refusal reason
    /// (as the challenge shows it: `"` becomes `'`).
    struct Attack {
        var name: String
        var token: String
        var status: Int
        var reason: String
    }

    /// The two issuers the route accepts, by their `iss` value.
    static let remote = "https://remote.test"
    static let inline = "https://inline.test"
    /// The order of P-256, for the psychic signature r = s = n (CVE-2022-21449).
    static let p256Order = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"

    /// A JWKS server publishing the lab's `rsa` and `ec256` keys at `jwks.json`.
    static func keyServer(_ lab: TokenLab) async throws -> JWKSServer {
        let server = try await JWKSServer()
        try server.publish([lab.jwks["rsa"]!, lab.jwks["ec256"]!], at: "jwks.json")
        return server
    }

    /// A gateway whose `/api` route, proxied to `upstream`, accepts `remote` (JWKS URL) and
    /// `inline` (RSA, P-256 and an HMAC secret; tokens up to 16 KB, so a 10 KB `kid` reaches
    /// the key lookup).
    static func config(
        lab: TokenLab,
        server: JWKSServer,
        upstream: TestUpstream,
        refetchSeconds: Double = 300,
        inlineMaxTokenBytes: Int = 16384,
        limits: String = ""
    ) -> String {
        """
        { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],\(limits)
          "issuers": {
            "remote": { "issuer": "\(remote)", "audiences": ["api"], "leewaySeconds": 0,
                        "jwksURL": "https://localhost:\(server.port)/jwks.json",
                        "caFile": "\(server.certificate.certificateFile.path)",
                        "jwksRefetchIntervalSeconds": \(refetchSeconds) },
            "inline": { "issuer": "\(inline)", "audiences": ["api"], "leewaySeconds": 0, "maxTokenBytes": \(inlineMaxTokenBytes),
                        "algorithms": ["RS256", "PS256", "ES256", "HS256", "HS384", "HS512"],
                        "keys": [ \(lab.jwks["rsa"]!), \(lab.jwks["ec256"]!),
                                  { "kty": "oct", "kid": "hmac", "k": "\(lab.secret)" } ] }
          },
          "routes": [ { "match": { "pathPrefix": "/api" }, "backend": "app",
                        "auth": { "issuers": ["remote", "inline"] } } ],
          "backends": { "app": { "plugin": "http-proxy",
                                 "config": { "upstreams": [ { "url": "\(upstream.url)" } ] } } } }
        """
    }

    /// Tokens from `jwt_fixture.py forge`, one per spec.
    static func forge(_ lab: TokenLab, _ specs: [[String: Any]]) async throws -> [String] {
        let input = String(decoding: try JSONSerialization.data(withJSONObject: specs), as: UTF8.self)
        let output = try await ProcessRunner.run(
            "python3",
            [TokenLab.script.path, "forge", lab.directory.url.path],
            standardInput: input,
            timeout: 120
        )
        guard output.exitCode == 0 else {
            throw ProcessRunnerError(message: "jwt_fixture.py forge failed: \(output.standardError)")
        }
        let tokens = output.standardOutput.split(separator: "\n").map(String.init)
        guard tokens.count == specs.count else {
            throw ProcessRunnerError(message: "jwt_fixture.py forge made \(tokens.count) of \(specs.count) tokens")
        }
        return tokens
    }

    /// Signed with a lab key (`RS256` with `rsa` unless told otherwise), `kid` = the key name.
    static func signed(
        _ issuer: String,
        key: String = "rsa",
        alg: String = "RS256",
        header: [String: Any] = [:],
        claims: [String: Any] = [:]
    ) -> [String: Any] {
        [
            "header": ["alg": alg, "kid": key].merging(header) { $1 },
            "claims": TokenLab.claims(claims, issuer: issuer),
            "sign": ["key": key, "alg": alg],
        ]
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The short name of an issuer for row names.
    static func label(_ issuer: String) -> String { issuer == remote ? "remote" : "inline" }

    /// The corpus: rows whose tokens come from one `forge` call, plus rows derived from them.
    static func corpus(lab: TokenLab, server: JWKSServer) async throws -> [Attack] {
        var rows: [(name: String, spec: [String: Any], status: Int, reason: String)] = []
        let now = Int(Date().timeIntervalSince1970)
        let issuers = [remote, inline]

        // Baselines: these must pass, so the table cannot pass by refusing everything.
        for issuer in issuers {
            rows.append(("valid RS256 (\(label(issuer)))", signed(issuer), 200, ""))
            rows.append(("valid ES256 (\(label(issuer)))", signed(issuer, key: "ec256", alg: "ES256"), 200, ""))
        }

        // alg none in every casing: with an empty signature, with a real RS256 signature, and
        // without the signature part at all.
        for issuer in issuers {
            for casing in ["none", "None", "NONE", "nOnE"] {
                let header: [String: Any] = ["alg": casing, "typ": "JWT"]
                let claims = TokenLab.claims(issuer: issuer)
                rows.append(
                    (
                        "alg \(casing), empty signature (\(label(issuer)))",
                        ["header": header, "claims": claims, "sign": ["none": true]], 401, "alg none"
                    )
                )
                rows.append(
                    (
                        "alg \(casing), RS256 signature (\(label(issuer)))",
                        ["header": header, "claims": claims, "sign": ["key": "rsa", "alg": "RS256"]], 401,
                        "alg none"
                    )
                )
            }
        }

        // HS* with a public key as the HMAC secret, in each form it could be held in.
        let forms: [(key: String, form: String, text: String?)] = [
            ("rsa", "pem", nil), ("rsa", "pem-nonl", nil), ("rsa", "der", nil), ("rsa", "text", lab.jwks["rsa"]!),
            ("ec256", "pem", nil), ("ec256", "der", nil), ("ec256", "text", lab.jwks["ec256"]!),
        ]
        for form in forms {
            for alg in ["HS256", "HS384", "HS512"] {
                var sign: [String: Any] = ["hmac": form.form, "key": form.key, "alg": alg]
                if let text = form.text { sign["text"] = text }
                let what = "\(alg) keyed with the \(form.key) public key as \(form.form == "text" ? "JWK" : form.form)"
                rows.append(
                    (
                        "\(what), kid \(form.key) (remote)",
                        [
                            "header": ["alg": alg, "kid": form.key], "claims": TokenLab.claims(issuer: remote),
                            "sign": sign,
                        ], 401, "algorithm \(alg) is not allowed for this issuer"
                    )
                )
                rows.append(
                    (
                        "\(what), kid \(form.key) (inline)",
                        [
                            "header": ["alg": alg, "kid": form.key], "claims": TokenLab.claims(issuer: inline),
                            "sign": sign,
                        ], 401, "algorithm \(alg) does not fit key '\(form.key)'"
                    )
                )
                rows.append(
                    (
                        "\(what), no kid (inline)",
                        ["header": ["alg": alg], "claims": TokenLab.claims(issuer: inline), "sign": sign], 401,
                        "signature is invalid"
                    )
                )
            }
        }
        rows.append(
            (
                "HS256 keyed with the rsa public key PEM, kid hmac (inline)",
                [
                    "header": ["alg": "HS256", "kid": "hmac"], "claims": TokenLab.claims(issuer: inline),
                    "sign": ["hmac": "pem", "key": "rsa", "alg": "HS256"],
                ], 401, "signature is invalid"
            )
        )

        // kid injection. The remote issuer's default maxTokenBytes (8192) refuses the 10 KB kid
        // before it is parsed; the inline issuer (16 KB) looks it up.
        let kids: [(name: String, kid: String)] = [
            ("path traversal ../../dev/null", "../../dev/null"), ("absolute path /dev/null", "/dev/null"),
            ("SQL-ish", "' OR '1'='1"), ("10 KB", String(repeating: "k", count: 10_240)),
            ("with NUL", "rsa\u{0}"), ("with CRLF", "rsa\r\nX-Injected: 1"), ("NUL inside", "r\u{0}sa"),
        ]
        for (name, kid) in kids {
            for issuer in issuers {
                let tooLong = issuer == remote && kid.utf8.count > 8192
                rows.append(
                    (
                        "kid \(name) (\(label(issuer)))",
                        signed(issuer, header: ["kid": kid]), 401,
                        tooLong ? "longer than 8192 bytes" : "unknown key id"
                    )
                )
            }
        }
        rows.append(
            (
                "kid naming the HMAC key on an RS256 token (inline)", signed(inline, header: ["kid": "hmac"]), 401,
                "algorithm RS256 does not fit key 'hmac'"
            )
        )
        rows.append(
            (
                "kid naming the HMAC key on an RS256 token (remote)", signed(remote, header: ["kid": "hmac"]), 401,
                "unknown key id"
            )
        )

        // Keys named by the token itself. jku and x5u point at the key server, which must never
        // see a request for them.
        let base = "https://localhost:\(server.port)"
        for issuer in issuers {
            let claims = TokenLab.claims(issuer: issuer)
            let attacker: [String: Any] = ["attacker": "plain", "alg": "RS256"]
            rows.append(
                (
                    "jku to the key server (\(label(issuer)))",
                    [
                        "header": ["alg": "RS256", "kid": "attacker", "jku": "\(base)/evil/jwks.json"],
                        "claims": claims, "sign": attacker,
                    ], 401, "names its own key ('jku')"
                )
            )
            rows.append(
                (
                    "x5u to the key server (\(label(issuer)))",
                    [
                        "header": ["alg": "RS256", "x5u": "\(base)/evil/cert.pem"], "claims": claims,
                        "sign": attacker,
                    ], 401, "names its own key ('x5u')"
                )
            )
            for kid in ["rsa", nil] as [String?] {
                let header: [String: Any] = kid.map { ["alg": "RS256", "kid": $0] } ?? ["alg": "RS256"]
                let kidName = kid.map { "kid \($0)" } ?? "no kid"
                rows.append(
                    (
                        "embedded jwk, signed with it, \(kidName) (\(label(issuer)))",
                        ["header": header, "claims": claims, "sign": ["attacker": "jwk", "alg": "RS256"]], 401,
                        "names its own key ('jwk')"
                    )
                )
                rows.append(
                    (
                        "x5c self-signed chain, signed with its key, \(kidName) (\(label(issuer)))",
                        ["header": header, "claims": claims, "sign": ["attacker": "x5c", "alg": "RS256"]], 401,
                        "names its own key ('x5c')"
                    )
                )
            }
            rows.append(
                (
                    "jku beside a valid signature (\(label(issuer)))",
                    signed(issuer, header: ["jku": "\(base)/evil/jwks.json"]), 401, "names its own key ('jku')"
                )
            )
        }

        // crit: unknown, and known-looking (RFC 7797's b64), both on validly signed tokens.
        for issuer in issuers {
            rows.append(
                (
                    "crit unknown (\(label(issuer)))", signed(issuer, header: ["crit": ["urn:x"], "urn:x": 1]), 401,
                    "unsupported critical parameter 'urn:x'"
                )
            )
            rows.append(
                (
                    "crit b64 false (\(label(issuer)))", signed(issuer, header: ["crit": ["b64"], "b64": false]),
                    401, "unsupported critical parameter 'b64'"
                )
            )
            rows.append(
                (
                    "crit empty array (\(label(issuer)))", signed(issuer, header: ["crit": [] as [String]]), 401,
                    "'crit' is not a non-empty array"
                )
            )
        }

        // ECDSA signatures: psychic (CVE-2022-21449), DER instead of R||S, wrong lengths.
        for issuer in issuers {
            let es = signed(issuer, key: "ec256", alg: "ES256")
            func with(_ changes: [String: Any]) -> [String: Any] { es.merging(changes) { $1 } }
            let name = label(issuer)
            rows.append(
                (
                    "ES256 psychic r = s = 0 (\(name))", with(["sign": ["raw": String(repeating: "00", count: 64)]]),
                    401, "signature is invalid"
                )
            )
            rows.append(
                (
                    "ES256 psychic r = s = n (\(name))", with(["sign": ["raw": p256Order + p256Order]]), 401,
                    "signature is invalid"
                )
            )
            rows.append(
                (
                    "ES256 signature DER-encoded (\(name))",
                    with(["sign": ["key": "ec256", "alg": "ES256", "form": "der"]]), 401, "signature is invalid"
                )
            )
            rows.append(("ES256 signature 65 bytes (\(name))", with(["append": "00"]), 401, "signature is invalid"))
            rows.append(("ES256 signature truncated (\(name))", with(["truncate": 1]), 401, "signature is invalid"))
            rows.append(("ES256 signature r only (\(name))", with(["truncate": 32]), 401, "signature is invalid"))
            rows.append(("ES256 signature empty (\(name))", with(["truncate": 64]), 401, "signature is invalid"))
        }

        // Duplicate members: parsers disagree on which one counts, so the token must be refused
        // even though the issuer's key signed it.
        for issuer in issuers {
            let claims = TokenLab.claims(issuer: issuer)
            func payload(_ duplicate: String) -> String {
                let rest = claims.filter { !duplicate.contains("\"\($0.key)\"") }
                let members = rest.map { key, value in
                    "\"\(key)\":" + (value is String ? "\"\(value)\"" : "\(value)")
                }
                return "{" + ([duplicate] + members).joined(separator: ",") + "}"
            }
            let duplicates: [(name: String, members: String)] = [
                ("sub", #""sub":"alice","sub":"admin""#),
                ("exp", #""exp":\#(now - 3600),"exp":\#(now + 600)"#),
                ("exp", #""exp":\#(now + 600),"exp":\#(now - 3600)"#),
                ("aud", #""aud":"web","aud":"api""#),
                ("aud", #""aud":"api","aud":"web""#),
                ("iss", #""iss":"https://other.test","iss":"\#(issuer)""#),
            ]
            for (offset, (member, members)) in duplicates.enumerated() {
                rows.append(
                    (
                        "payload with \(member) twice #\(offset) (\(label(issuer)))",
                        [
                            "header": ["alg": "RS256", "kid": "rsa"], "claimsJSON": payload(members),
                            "sign": ["key": "rsa", "alg": "RS256"],
                        ], 401, "has the member '\(member)' twice"
                    )
                )
            }
            let headers: [(member: String, json: String)] = [
                ("alg", #"{"alg":"RS256","alg":"none","kid":"rsa"}"#),
                ("alg", #"{"alg":"none","alg":"RS256","kid":"rsa"}"#),
                ("kid", #"{"alg":"RS256","kid":"nope","kid":"rsa"}"#),
                ("kid", #"{"alg":"RS256","kid":"rsa","kid":"nope"}"#),
            ]
            for (offset, header) in headers.enumerated() {
                rows.append(
                    (
                        "header with \(header.member) twice #\(offset) (\(label(issuer)))",
                        ["headerJSON": header.json, "claims": claims, "sign": ["key": "rsa", "alg": "RS256"]], 401,
                        "has the member '\(header.member)' twice"
                    )
                )
            }
        }

        // Sanity baselines: well-formed tokens that are simply not for this route.
        for issuer in issuers {
            let name = label(issuer)
            rows.append(
                (
                    "valid for another issuer (\(name))",
                    signed(issuer).merging(["claims": TokenLab.claims(issuer: "https://other.test")]) { $1 }, 401,
                    "tokens from issuer https://other.test are not accepted here"
                )
            )
            rows.append(
                (
                    "valid for another audience (\(name))", signed(issuer, claims: ["aud": "web"]), 401,
                    "audience mismatch"
                )
            )
            rows.append(("expired (\(name))", signed(issuer, claims: ["exp": now - 60]), 401, "the token expired at"))
            rows.append(
                ("nbf in the future (\(name))", signed(issuer, claims: ["nbf": now + 600]), 401, "not valid before")
            )
        }

        // Valid tokens with payloads whose base64url has "-", "_" and needs padding, for re-encoding.
        for issuer in issuers {
            rows.append(
                (
                    "valid RS256, awkward payload (\(label(issuer)))", signed(issuer).merging(["awkward": true]) { $1 },
                    200, ""
                )
            )
        }

        let tokens = try await forge(lab, rows.map(\.spec))
        var attacks = zip(rows, tokens).map { row, token in
            Attack(name: row.name, token: token, status: row.status, reason: row.reason)
        }

        // Alterations of a valid token: the signature still matches the original bytes, so only
        // a verifier that re-encodes or trims would accept these.
        for issuer in issuers {
            let name = label(issuer)
            let valid = attacks.first { $0.name == "valid RS256, awkward payload (\(name))" }!.token
            let parts = valid.split(separator: ".").map(String.init)
            let (header, payload, signature) = (parts[0], parts[1], parts[2])
            let padding = String(repeating: "=", count: (4 - payload.utf8.count % 4) % 4)
            let standard = payload.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            let signaturePadding = String(repeating: "=", count: (4 - signature.utf8.count % 4) % 4)
            let altered: [(String, String, String)] = [
                ("payload padded with =", "\(header).\(payload)\(padding).\(signature)", "not valid base64url"),
                ("payload in the +/ alphabet", "\(header).\(standard).\(signature)", "not valid base64url"),
                (
                    "signature padded with =", "\(header).\(payload).\(signature)\(signaturePadding)",
                    "not valid base64url"
                ),
                ("space before a dot", "\(header) .\(payload).\(signature)", "not valid base64url"),
                ("space after a dot", "\(header).\(payload). \(signature)", "not valid base64url"),
                (
                    "tab inside the payload", "\(header).\(payload.prefix(8))\t\(payload.dropFirst(8)).\(signature)",
                    "not valid base64url"
                ),
                ("4 parts", "\(valid).\(signature)", "not a JWS"),
                ("trailing dot", "\(valid).", "not a JWS"),
                ("5 parts, JWE-shaped", "\(valid).\(payload).\(signature)", "encrypted tokens (JWE)"),
                ("signature dropped", "\(header).\(payload)", "not a JWS"),
                ("empty signature", "\(header).\(payload).", "signature is invalid"),
            ]
            #expect(!padding.isEmpty && standard != payload && !signaturePadding.isEmpty, "awkward payload (\(name))")
            for (what, token, reason) in altered {
                attacks.append(
                    Attack(name: "valid RS256, \(what) (\(name))", token: token, status: 401, reason: reason)
                )
            }
            // alg none with no signature part: two parts, refused before the header is read.
            for casing in ["none", "None", "NONE", "nOnE"] {
                let none = base64URL(Data(#"{"alg":"\#(casing)","typ":"JWT"}"#.utf8))
                attacks.append(
                    Attack(
                        name: "alg \(casing), no signature part (\(name))",
                        token: "\(none).\(payload)",
                        status: 401,
                        reason: "not a JWS"
                    )
                )
            }
        }
        let jwe = [#"{"alg":"RSA-OAEP","enc":"A256GCM","kid":"rsa"}"#, "key", "iv", "ciphertext", "tag"]
        attacks.append(
            Attack(
                name: "JWE compact serialization",
                token: jwe.map { base64URL(Data($0.utf8)) }.joined(separator: "."),
                status: 401,
                reason: "encrypted tokens (JWE)"
            )
        )
        return attacks
    }

    @Test("every attack gets 401 invalid_token, reaches no backend and fetches nothing; valid tokens pass")
    func corpus() async throws {
        let lab = try await TokenLab.shared()
        let server = try await Self.keyServer(lab)
        defer { server.stop() }
        let upstream = try await TestUpstream(name: "app")
        let attacks = try await Self.corpus(lab: lab, server: server)
        let config = Self.config(lab: lab, server: server, upstream: upstream)
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            // The first remote token fetches the key set: the one fetch this test allows.
            let first = attacks.first { $0.name == "valid RS256 (remote)" }!
            let response = try await AuthTests.get(gateway, "/api/first", token: first.token)
            #expect(response.status == 200, "\(response.header("www-authenticate") ?? "")")
            #expect(server.requests("jwks.json") == 1)

            // Eight at a time: the corpus is about answers, not load, and a burst of 50 RSA checks
            // at once starves the rest of the suite's timing-sensitive tests.
            let answers = try await AuthTests.flood(gateway, "/api/x", tokens: attacks.map(\.token), parallel: 8)
            try #require(answers.count == attacks.count)
            for (attack, answer) in zip(attacks, answers) {
                #expect(
                    answer.status == attack.status,
                    "\(attack.name): \(answer.status) \(answer.challenge.prefix(300))"
                )
                if attack.status == 401 {
                    #expect(
                        answer.challenge.hasPrefix(#"Bearer realm="ethical-gateway", error="invalid_token""#)
                            && answer.challenge.contains(attack.reason),
                        "\(attack.name): \(answer.challenge.prefix(300))"
                    )
                    // Nothing the attacker sent is echoed at length (a 10 KB kid stays an excerpt).
                    #expect(answer.challenge.utf8.count < 400, "\(attack.name): \(answer.challenge.utf8.count) bytes")
                }
            }
        }
        // Only the accepted tokens reached the backend; the key server saw the one fetch and
        // nothing else (no jku, no x5u, no refetch for the unknown kids within the interval).
        let accepted = attacks.filter { $0.status == 200 }.count
        #expect(upstream.requests.count == accepted + 1)
        #expect(upstream.requests.allSatisfy { $0.uri.hasPrefix("/api/") })
        let log =
            (try? String(contentsOf: server.folder.url.appendingPathComponent("requests.log"), encoding: .utf8)) ?? ""
        #expect(log.split(separator: "\n") == ["jwks.json"], "key server requests: \(log)")
    }

    @Test("unknown kids cost the key server exactly the one refetch per interval the README promises")
    func unknownKidRefetch() async throws {
        let lab = try await TokenLab.shared()
        let server = try await Self.keyServer(lab)
        defer { server.stop() }
        let upstream = try await TestUpstream(name: "app")
        // Long enough that a loaded machine cannot stretch a round of floods past it (5 s did).
        let interval = 15.0
        let kids = ["../../dev/null", "/dev/null", "' OR '1'='1", "rsa\u{0}", "rsa\r\nX-Injected: 1", "hmac"]
        let tokens = try await Self.forge(
            lab,
            [Self.signed(Self.remote)] + kids.map { Self.signed(Self.remote, header: ["kid": $0]) }
        )
        let config = Self.config(lab: lab, server: server, upstream: upstream, refetchSeconds: interval)
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            #expect(try await AuthTests.get(gateway, "/api/first", token: tokens[0]).status == 200)
            #expect(server.requests("jwks.json") == 1)
            // Within the interval of the first fetch: no refetch at all.
            for answer in try await AuthTests.flood(gateway, "/api/x", tokens: Array(tokens.dropFirst())) {
                #expect(answer.status == 401 && answer.challenge.contains("unknown key id"), "\(answer)")
            }
            #expect(server.requests("jwks.json") == 1)
            // Once the interval has passed: the unknown kids share exactly one refetch, and a second
            // round right after it causes none.
            try await Task.sleep(for: .seconds(interval + 0.5))
            let roundsStarted = ContinuousClock.now
            for _ in 0..<2 {
                for answer in try await AuthTests.flood(gateway, "/api/x", tokens: Array(tokens.dropFirst())) {
                    #expect(answer.status == 401 && answer.challenge.contains("unknown key id"), "\(answer)")
                }
                // One more refetch is allowed only if a loaded machine stretched the rounds past
                // another whole interval.
                let intervalsSince = Int((ContinuousClock.now - roundsStarted) / .seconds(interval))
                let fetches = server.requests("jwks.json")
                #expect(fetches >= 2 && fetches <= 2 + intervalsSince, "\(fetches) fetches")
            }
        }
        #expect(upstream.requests.count == 1)
    }

    /// Sends `GET /api/x` with `Authorization: Bearer <token>` over a raw socket (curl cannot
    /// take a header line this long) and returns the status line.
    static func rawStatus(_ gateway: LiveGateway, token: String) async throws -> String {
        let connection = try RawConnection(port: gateway.port("http"))
        // The gateway stops reading after its 431: sent off the concurrency pool's threads.
        await connection.sendOffThread("GET /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + token + "\r\n\r\n")
        let (text, closed) = await connection.readUntilClosed(timeout: 10)
        #expect(closed)
        return text.components(separatedBy: "\r\n").first ?? ""
    }

    @Test("oversize: a 1 MB or 100k-element-claim token stops at the header limit; 10k elements are parsed and refused")
    func oversize() async throws {
        let lab = try await TokenLab.shared()
        let server = try await Self.keyServer(lab)
        defer { server.stop() }
        let upstream = try await TestUpstream(name: "app")
        let scratch = try TemporaryDirectory(prefix: "oversize")
        defer { scratch.remove() }
        let specs: [[String: Any]] = [(Self.remote, 10_000), (Self.inline, 10_000), (Self.inline, 100_000)].map {
            issuer,
            count in
            [
                "header": ["alg": "RS256", "kid": "rsa"],
                "claims": TokenLab.claims(["big": Array(repeating: 0, count: count)], issuer: issuer),
                "sign": ["attacker": "plain", "alg": "RS256"],
            ]
        }
        let tokens = try await Self.forge(lab, specs)
        let megabyte = String(repeating: "a", count: 1 << 20)
        // Default limits (32 KB of headers); the inline issuer takes tokens up to 32 KB, so the
        // 10k-element token (about 27 KB) is parsed and its signature checked.
        let config = Self.config(lab: lab, server: server, upstream: upstream, inlineMaxTokenBytes: 32768)
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            let rows: [(name: String, token: String, reason: String)] = [
                ("10k-element claim array (remote, 8192-byte limit)", tokens[0], "longer than 8192 bytes"),
                ("10k-element claim array (inline, parsed)", tokens[1], "signature is invalid"),
            ]
            for (offset, row) in rows.enumerated() {
                // Over the 128 KB limit of one command-line argument: curl reads the header from a file.
                let file = try scratch.write("Authorization: Bearer \(row.token)", to: "header\(offset)")
                let started = Date()
                let response = try await Curl.request(
                    "http://127.0.0.1:\(gateway.port("http"))/api/x",
                    ["-H", "@\(file.path)"]
                )
                let challenge = response.header("www-authenticate") ?? ""
                #expect(response.status == 401, "\(row.name): \(response.status) \(challenge)")
                #expect(
                    challenge.contains(#"error="invalid_token""#) && challenge.contains(row.reason),
                    "\(row.name): \(challenge)"
                )
                #expect(Date().timeIntervalSince(started) < 10, "\(row.name) took too long")
            }
            // Past the header limit: cut off with 431 before anything parses the token.
            let hundredThousand = try await Self.rawStatus(gateway, token: tokens[2])
            #expect(hundredThousand == "HTTP/1.1 431 Request Header Fields Too Large", "100k-element claim array")
            let huge = try await Self.rawStatus(gateway, token: megabyte)
            #expect(huge == "HTTP/1.1 431 Request Header Fields Too Large", "1 MB token")
        }
        // Raising maxHeaderBytes past what NIO's HTTP parser takes (80 KiB of head) is a
        // configuration error (ConfigStrictnessTests), so the 431 above is the only answer.
        #expect(upstream.requests.isEmpty)
        #expect(server.requests("jwks.json") <= 1)
    }
}
