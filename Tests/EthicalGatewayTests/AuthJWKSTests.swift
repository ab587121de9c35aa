import EthicalGateway
import EthicalGatewayTesting
import Foundation
import NIOCore
import Testing

/// A real HTTPS server (Python's `http.server` with a test certificate) serving key sets and an
/// OpenID configuration from a folder, logging each request.
final class JWKSServer: @unchecked Sendable {
    let folder: TemporaryDirectory
    let certificate: TestCertificate
    let port: Int
    private let process: Process

    init() async throws {
        self.folder = try TemporaryDirectory(prefix: "jwks")
        self.certificate = try TestCertificate.make(
            commonName: "localhost",
            dnsNames: ["localhost"],
            in: self.folder.url,
            fileStem: "server"
        )
        let output = self.folder.url.appendingPathComponent("server.out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ProcessRunner.locate("python3"))
        process.arguments = [
            TokenLab.script.path, "serve", self.folder.url.path, self.certificate.certificateFile.path,
            self.certificate.keyFile.path,
        ]
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        var port: Int?
        for _ in 0..<100 where port == nil && process.isRunning {
            let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first, line.hasPrefix("PORT ") { port = Int(line.dropFirst(5)) }
            if port == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        guard let port else {
            Self.stop(process)
            throw ProcessRunnerError(message: "the JWKS server did not start")
        }
        self.port = port
    }

    /// Stops the server by its PID: SIGTERM, then SIGKILL if it lingers.
    private static func stop(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Publishes a key set at `path` (e.g. `a/jwks.json`).
    func publish(_ jwks: [String], at path: String) throws {
        _ = try self.folder.write(#"{ "keys": [ \#(jwks.joined(separator: ", ")) ] }"#, to: path)
    }

    /// How many times `path` was requested.
    func requests(_ path: String) -> Int {
        let log =
            (try? String(contentsOf: self.folder.url.appendingPathComponent("requests.log"), encoding: .utf8)) ?? ""
        return log.split(separator: "\n").filter { $0 == path }.count
    }

    func stop() { Self.stop(self.process) }

    deinit {
        Self.stop(self.process)
        self.folder.remove()
    }
}

@Suite("Authentication: keys over HTTPS")
struct AuthJWKSTests {
    @Test("JWKS fetch, rotation after one refetch, a kid flood, OpenID discovery, and an issuer that goes down")
    func jwksLifecycle() async throws {
        let lab = try await TokenLab.shared()
        let server = try await JWKSServer()
        defer { server.stop() }
        let base = "https://localhost:\(server.port)"
        try server.publish([lab.jwks["rsa"]!], at: "a/jwks.json")
        try server.publish([lab.jwks["rsa"]!], at: "b/jwks.json")
        try server.publish([lab.jwks["ec256"]!], at: "d/jwks.json")
        _ = try server.folder.write(
            #"{ "issuer": "\#(base)", "jwks_uri": "\#(base)/d/jwks.json" }"#,
            to: ".well-known/openid-configuration"
        )
        let ca = server.certificate.certificateFile.path
        let config = """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "issuers": {
                "a": { "issuer": "https://a.test", "audiences": ["api"], "jwksURL": "\(base)/a/jwks.json",
                       "caFile": "\(ca)", "jwksRefetchIntervalSeconds": 60 },
                "b": { "issuer": "https://b.test", "audiences": ["api"], "jwksURL": "\(base)/b/jwks.json",
                       "caFile": "\(ca)", "jwksRefetchIntervalSeconds": 0 },
                "discovered": { "issuer": "\(base)", "audiences": ["api"], "openIDDiscovery": true, "caFile": "\(ca)" },
                "untrusted": { "issuer": "https://u.test", "audiences": ["api"], "jwksURL": "\(base)/a/jwks.json" }
              },
              "routes": [ { "backend": "ok", "auth": { "issuers": ["a", "b", "discovered", "untrusted"] } } ],
              "backends": { "ok": { "plugin": "respond", "config": { "status": 200, "body": "ok" } } } }
            """
        var specs: [[String: Any]] = [
            ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims(issuer: "https://a.test")],
            ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims(issuer: "https://b.test")],
            ["key": "rsa2", "alg": "PS256", "claims": TokenLab.claims(issuer: "https://b.test")],
            ["key": "ec256", "alg": "ES256", "claims": TokenLab.claims(issuer: base)],
            ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims(issuer: "https://a.test")],
            ["key": "rsa", "alg": "RS256", "claims": TokenLab.claims(issuer: "https://u.test")],
            [
                "key": "rsa", "alg": "RS256", "headers": ["kid": "gone"],
                "claims": TokenLab.claims(issuer: "https://b.test"),
            ],
        ]
        let floodSize = 30
        for _ in 0..<floodSize {
            specs.append([
                "key": "rsa", "alg": "RS256", "headers": ["kid": UUID().uuidString],
                "claims": TokenLab.claims(issuer: "https://a.test"),
            ])
        }
        let tokens = try await lab.mint(specs)
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            func get(_ token: String) async throws -> CurlResponse {
                try await AuthTests.get(gateway, "/", token: token)
            }
            #expect(try await get(tokens[0]).status == 200)
            #expect(server.requests("a/jwks.json") == 1)

            // A flood of unknown kids: refused, and no more fetches than the refetch interval allows.
            let flood = try await AuthTests.flood(gateway, "/", tokens: Array(tokens.suffix(floodSize)))
            #expect(flood.count == floodSize)
            for response in flood {
                #expect(response.status == 401)
                #expect(response.challenge.contains("unknown key id"))
            }
            #expect(server.requests("a/jwks.json") == 1)

            // Rotation: a new kid is published; its token is accepted after one refetch.
            #expect(try await get(tokens[1]).status == 200)
            #expect(server.requests("b/jwks.json") == 1)
            try server.publish([lab.jwks["rsa"]!, lab.jwks["rsa2"]!], at: "b/jwks.json")
            let rotated = try await get(tokens[2])
            #expect(rotated.status == 200, "\(rotated.header("www-authenticate") ?? "")")
            #expect(server.requests("b/jwks.json") == 2)

            // OpenID discovery finds the key set.
            let discovered = try await get(tokens[3])
            #expect(discovered.status == 200, "\(discovered.header("www-authenticate") ?? "")")
            #expect(server.requests(".well-known/openid-configuration") == 1)
            #expect(server.requests("d/jwks.json") == 1)

            // The server's certificate is verified: without the CA file the keys cannot be had.
            let untrusted = try await get(tokens[5])
            #expect(untrusted.status == 503)

            // The issuer goes down: the cached keys keep working; an unknown kid is still refused.
            server.stop()
            #expect(try await get(tokens[4]).status == 200)
            let gone = try await get(tokens[6])
            #expect(gone.status == 401)
            #expect(gone.header("www-authenticate")?.contains("unknown key id 'gone'") == true)
        }
    }

    @Test("a key set is kept for its Cache-Control max-age within the issuer's bounds, then refreshed")
    func cacheLifetime() async throws {
        let lab = try await TokenLab.shared()
        let server = try await JWKSServer()
        defer { server.stop() }
        _ = try server.folder.write("public, max-age=3600", to: "cache-control")
        try server.publish([lab.jwks["ec256"]!], at: "short/jwks.json")
        try server.publish([lab.jwks["ec256"]!], at: "long/jwks.json")
        let base = "https://localhost:\(server.port)"
        let ca = server.certificate.certificateFile.path
        let config = """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "issuers": {
                "short": { "issuer": "https://short.test", "audiences": ["api"], "jwksURL": "\(base)/short/jwks.json",
                           "caFile": "\(ca)", "jwksMinCacheSeconds": 0.5, "jwksMaxCacheSeconds": 1 },
                "long": { "issuer": "https://long.test", "audiences": ["api"], "jwksURL": "\(base)/long/jwks.json",
                          "caFile": "\(ca)" }
              },
              "routes": [ { "backend": "ok", "auth": { "issuers": ["short", "long"] } } ],
              "backends": { "ok": { "plugin": "respond", "config": { "status": 200, "body": "ok" } } } }
            """
        let tokens = try await lab.mint(
            ["https://short.test", "https://long.test", "https://short.test", "https://long.test"].map {
                ["key": "ec256", "alg": "ES256", "claims": TokenLab.claims(issuer: $0)]
            }
        )
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            for token in tokens.prefix(2) {
                #expect(try await AuthTests.get(gateway, "/", token: token).status == 200)
            }
            #expect(server.requests("short/jwks.json") == 1)
            #expect(server.requests("long/jwks.json") == 1)
            // "short" caps max-age=3600 at 1 s and refreshes at 90 % of it, started by the next
            // token it has to verify; "long" keeps its set for the hour.
            try await Task.sleep(for: .milliseconds(1000))
            for token in tokens.suffix(2) {
                #expect(try await AuthTests.get(gateway, "/", token: token).status == 200)
            }
            var refreshed = server.requests("short/jwks.json")
            for _ in 0..<40 where refreshed < 2 {
                try await Task.sleep(for: .milliseconds(50))
                refreshed = server.requests("short/jwks.json")
            }
            #expect(refreshed == 2)
            #expect(server.requests("long/jwks.json") == 1)
        }
    }

    @Test("opaque tokens are checked by introspection (RFC 7662) and the answer is cached until exp")
    func introspection() async throws {
        let server = try await JWKSServer()
        defer { server.stop() }
        let now = Int(Date().timeIntervalSince1970)
        _ = try server.folder.write("gateway:s3cret/with space", to: "introspect-client")
        _ = try server.folder.write(
            """
            { "opaque-good": { "active": true, "scope": "orders:read", "sub": "dora", "iss": "https://op.test",
                               "aud": "api", "exp": \(now + 600) },
              "opaque-narrow": { "active": true, "scope": "profile", "sub": "eve", "exp": \(now + 600) },
              "opaque-other-aud": { "active": true, "scope": "orders:read", "aud": "web", "exp": \(now + 600) },
              "opaque-expired": { "active": true, "scope": "orders:read", "exp": \(now - 100) } }
            """,
            to: "introspect.json"
        )
        _ = try server.folder.write("s3cret/with space\n", to: "secret")
        let base = "https://localhost:\(server.port)"
        let ca = server.certificate.certificateFile.path
        func config(secretFile: String) -> String {
            """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "issuers": {
                "op": { "issuer": "https://op.test", "audiences": ["api"], "caFile": "\(ca)", "leewaySeconds": 0,
                        "maxTokenBytes": 256,
                        "introspection": { "url": "\(base)/introspect", "clientID": "gateway",
                                           "clientSecretFile": "\(secretFile)" } },
                "big": { "issuer": "https://big.test", "audiences": ["api"], "maxTokenBytes": 60000,
                         "jwksURL": "\(base)/jwks", "caFile": "\(ca)" }
              },
              "routes": [ { "match": { "pathPrefix": "/both" }, "backend": "ok",
                            "auth": { "issuers": ["big", "op"], "scopes": ["orders:read"] } },
                          { "backend": "ok", "auth": { "issuers": ["op"], "scopes": ["orders:read"],
                            "claimHeaders": { "X-User": "sub" } } } ],
              "backends": { "ok": { "plugin": "respond", "config": { "status": 200, "body": "ok" } } } }
            """
        }
        try await LiveGateway.with(
            config: config(secretFile: server.folder.url.appendingPathComponent("secret").path),
            registry: gatewayRegistry
        ) {
            gateway in
            func get(_ token: String) async throws -> CurlResponse {
                try await AuthTests.get(gateway, "/", token: token)
            }
            let good = try await get("opaque-good")
            #expect(good.status == 200, "\(good.header("www-authenticate") ?? "")")
            for _ in 0..<5 { #expect(try await get("opaque-good").status == 200) }
            // The cache is per event loop and each curl is a new connection: at most one ask per loop.
            #expect(server.requests("introspect") <= min(System.coreCount, 5))

            let inactive = try await get("opaque-unknown")
            #expect(inactive.status == 401)
            #expect(inactive.header("www-authenticate")?.contains("the token is not active") == true)
            let narrow = try await get("opaque-narrow")
            #expect(narrow.status == 403)
            #expect(narrow.header("www-authenticate")?.contains("insufficient_scope") == true)
            let otherAudience = try await get("opaque-other-aud")
            #expect(otherAudience.header("www-authenticate")?.contains("audience mismatch") == true)
            let expired = try await get("opaque-expired")
            #expect(expired.header("www-authenticate")?.contains("the token expired at") == true)

            // An opaque token over op's 256 bytes is refused unasked, also where a route's other
            // issuer allows longer tokens.
            let asked = server.requests("introspect")
            let long = String(repeating: "x", count: 300)
            for path in ["/", "/both"] {
                let refused = try await AuthTests.get(gateway, path, token: long)
                #expect(refused.status == 401, "\(path)")
                #expect(refused.header("www-authenticate")?.contains("longer than 256 bytes") == true, "\(path)")
            }
            #expect(server.requests("introspect") == asked, "the identity provider was sent the long token")
        }
        _ = try server.folder.write("wrong", to: "secret")
        try await LiveGateway.with(
            config: config(secretFile: server.folder.url.appendingPathComponent("secret").path),
            registry: gatewayRegistry
        ) {
            gateway in
            let refused = try await AuthTests.get(gateway, "/", token: "opaque-good")
            #expect(refused.status == 503)
        }
    }
}
