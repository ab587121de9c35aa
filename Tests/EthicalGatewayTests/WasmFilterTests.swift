import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

@Suite("The wasm filter: http-wasm guests over a live gateway")
struct WasmFilterTests {
    static let guests = ["empty", "header-rewrite", "api-key", "redact", "misbehave"]

    /// A gateway with one route per example guest (each on a `respond` or proxy backend) and a
    /// route without filters.
    static func config(upstreamPort: Int) -> String {
        """
        { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
          "filters": {
            "rewrite": { "plugin": "wasm", "config": { "module": "wasm/header-rewrite.wasm",
                                                          "guestConfig": "X-Wasm-Example: header-rewrite" } },
            "api-key": { "plugin": "wasm", "config": { "module": "wasm/api-key.wasm", "guestConfig": "s3cr3t-key" } },
            "redact": { "plugin": "wasm", "config": { "module": "wasm/redact.wasm", "guestConfig": "secret",
                                                      "limits": { "maxBufferedBodyBytes": 100000 } } },
            "misbehave": { "plugin": "wasm", "config": { "module": "wasm/misbehave.wasm",
              "limits": { "memoryPages": 32, "fuelPerRequest": 2000000, "wallTimeMilliseconds": 2000 } } },
            "slow": { "plugin": "wasm", "config": { "module": "wasm/misbehave.wasm",
              "limits": { "fuelPerRequest": 1000000000, "wallTimeMilliseconds": 20 } } }
          },
          "routes": [
            { "name": "rewrite", "match": { "pathPrefix": "/rewrite" }, "filters": ["rewrite"], "backend": "hello" },
            { "name": "proxied", "match": { "pathPrefix": "/proxied" }, "filters": ["rewrite"], "backend": "upstream" },
            { "name": "key", "match": { "pathPrefix": "/key" }, "filters": ["api-key"], "backend": "hello" },
            { "name": "redact", "match": { "pathPrefix": "/redact" }, "filters": ["redact"], "backend": "secret" },
            { "name": "big", "match": { "pathPrefix": "/big" }, "filters": ["redact"], "backend": "upstream" },
            { "name": "slow", "match": { "pathPrefix": "/slow" }, "filters": ["slow"], "backend": "hello" },
            { "name": "bad", "match": { "pathPrefix": "/" }, "filters": ["misbehave"], "backend": "hello" },
            { "name": "plain", "match": { "pathPrefix": "/plain" }, "backend": "hello" }
          ],
          "backends": {
            "hello": { "plugin": "respond", "config": { "body": "hello" } },
            "secret": { "plugin": "respond", "config": { "body": "the secret is: secret, not Secret" } },
            "upstream": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:\(upstreamPort)" } ] } }
          } }
        """
    }

    func withGateway(_ body: (String, TestUpstream) async throws -> Void) async throws {
        let folder = try await WasmGuests.folder()
        let upstream = try await TestUpstream(name: "up") { request in
            request.uri.hasPrefix("/big")
                ? .stream(bytes: 300_000)
                : .text(status: 200, headers: [("content-type", "text/plain")], body: "from upstream")
        }
        do {
            try await LiveGateway.with(
                config: Self.config(upstreamPort: upstream.port),
                registry: gatewayRegistry,
                prepare: { try WasmGuests.install(Self.guests, into: $0, from: folder) }
            ) { gateway in
                try await body("http://127.0.0.1:\(gateway.port("http"))", upstream)
            }
            await upstream.stop()
        } catch {
            await upstream.stop()
            throw error
        }
    }

    @Test("header-rewrite: the guest removes and sets request headers and adds its response header")
    func headerRewrite() async throws {
        try await self.withGateway { base, upstream in
            let local = try await Curl.request(base + "/rewrite")
            #expect(local.status == 200 && local.bodyText == "hello")
            #expect(local.header("x-wasm-example") == "header-rewrite")
            let proxied = try await Curl.request(base + "/proxied/x", ["-H", "X-Debug: yes"])
            #expect(proxied.status == 200 && proxied.bodyText == "from upstream")
            #expect(proxied.header("x-wasm-example") == "header-rewrite")
            let seen = try #require(upstream.requests.last)
            #expect(seen.header("x-wasm-seen") == "1")
            #expect(seen.header("x-debug") == nil)
            let plain = try await Curl.request(base + "/plain")
            #expect(plain.status == 200 && plain.header("x-wasm-example") == nil)
        }
    }

    @Test("api-key: the guest answers 401 itself unless the key matches")
    func apiKey() async throws {
        try await self.withGateway { base, _ in
            let missing = try await Curl.request(base + "/key")
            #expect(missing.status == 401)
            #expect(missing.header("www-authenticate") == "ApiKey")
            #expect(missing.header("content-type") == "application/json")
            #expect(missing.bodyText == #"{"error":"a valid X-API-Key header is required"}"#)
            #expect(missing.header("content-length") == String(missing.body.count))
            let wrong = try await Curl.request(base + "/key", ["-H", "X-API-Key: s3cr3t-kez"])
            #expect(wrong.status == 401)
            let right = try await Curl.request(base + "/key", ["-H", "X-API-Key: s3cr3t-key", "--http1.1"])
            #expect(right.status == 200 && right.bodyText == "hello")
        }
    }

    @Test("redact: the guest holds the response and rewrites its body; an oversized one is a 502")
    func redact() async throws {
        try await self.withGateway { base, _ in
            let response = try await Curl.request(base + "/redact")
            #expect(response.status == 200)
            #expect(response.bodyText == "the ****** is: ******, not Secret")
            #expect(response.header("content-length") == String(response.body.count))
            let head = try await Curl.request(base + "/redact", ["-I"])
            #expect(head.status == 200)
            let big = try await Curl.request(base + "/big")
            #expect(big.status == 502)
            #expect(big.header("content-type") == "application/problem+json")
        }
    }

    @Test("a guest that traps, loops forever, runs past its wall time or grows its memory fails only its own requests")
    func isolation() async throws {
        try await self.withGateway { base, _ in
            try await withThrowingTaskGroup(of: (String, CurlResponse).self) { group in
                for round in 0..<3 {
                    for path in ["/trap", "/loop", "/grow", "/slow", "/ok\(round)", "/plain", "/rewrite"] {
                        group.addTask { (path, try await Curl.request(base + path)) }
                    }
                }
                for try await (path, response) in group {
                    switch path {
                    case "/trap", "/loop", "/grow", "/slow":
                        #expect(response.status == 500, "\(path)")
                        #expect(response.header("content-type") == "application/problem+json", "\(path)")
                        #expect(response.bodyText.contains("\"requestId\""), "\(path)")
                    case "/plain":
                        #expect(response.status == 200 && response.bodyText == "hello")
                    case "/rewrite":
                        #expect(response.status == 200 && response.header("x-wasm-example") == "header-rewrite")
                    default:
                        #expect(response.status == 200, "\(path)")
                        #expect(response.header("x-wasm-survived") == "1", "\(path)")
                    }
                }
            }
            // The same route still serves once the failed instances are gone.
            let after = try await Curl.request(base + "/after")
            #expect(after.status == 200 && after.header("x-wasm-survived") == "1")
        }
    }
}

@Suite("The wasm example configuration")
struct WasmExampleTests {
    @Test("config/examples/wasm.json runs the header-rewrite guest on a respond route")
    func example() async throws {
        let folder = try await WasmGuests.folder()
        let example = try String(
            contentsOf: repositoryRoot.appendingPathComponent("config/examples/wasm.json"),
            encoding: .utf8
        )
        let config = example.replacingOccurrences(of: #""port": 8080"#, with: #""port": 0"#)
        #expect(config != example)
        try await LiveGateway.with(
            config: config,
            registry: gatewayRegistry,
            prepare: { try WasmGuests.install(["header-rewrite"], into: $0, from: folder) }
        ) { gateway in
            let response = try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/")
            #expect(response.status == 200)
            #expect(response.header("x-wasm-example") == "header-rewrite")
        }
    }
}

@Suite("The wasm filter's configuration")
struct WasmFilterConfigTests {
    static func filterConfig(_ config: String) -> String {
        plainConfig(
            routes: #"[ { "match": { "pathPrefix": "/" }, "filters": ["guest"], "backend": "ok" } ]"#,
            backends: #"{ "ok": { "plugin": "respond" } }"#,
            extra: #""filters": { "guest": { "plugin": "wasm", "config": \#(config) } }"#
        )
    }

    func issues(_ config: String, files: [String: String] = [:], guests: [String] = []) async throws -> [ConfigIssue] {
        let folder = try await WasmGuests.folder()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try WasmGuests.install(guests, into: directory, from: folder)
        for (path, contents) in files { try directory.write(contents, to: path) }
        // The module paths are relative to the folder of the config: pass them as absolute ones.
        let json = Self.filterConfig(config).replacingOccurrences(of: "@DIR@", with: directory.url.path)
        return try await configIssues(json)
    }

    @Test("a good guest with its limits loads")
    func good() async throws {
        let issues = try await self.issues(
            #"{ "module": "@DIR@/wasm/redact.wasm", "guestConfig": "x", "limits": { "memoryPages": 8, "fuelPerRequest": 5000 } }"#,
            guests: ["redact"]
        )
        #expect(issues.isEmpty, "\(issues)")
    }

    @Test("each kind of bad module or limit is an error with its JSON path")
    func bad() async throws {
        let path = "$.filters.guest.config"
        let cases: [(String, [String: String], String, String)] = [
            (#"{ "module": "@DIR@/nope.wasm" }"#, [:], "\(path).module", "cannot read"),
            (
                #"{ "module": "@DIR@/text.wasm" }"#, ["text.wasm": "not wasm"], "\(path).module",
                "not a valid WebAssembly module"
            ),
            // The smallest valid module: no exports at all.
            (
                #"{ "module": "@DIR@/bare.wasm" }"#, ["bare.wasm": "\0asm\u{1}\0\0\0"], "\(path).module",
                "does not export handle_request"
            ),
            (
                #"{ "module": "@DIR@/wasm/redact.wasm", "limits": { "memoryPages": 1 } }"#, [:], "\(path).module",
                "starts larger than its limit of 1 pages"
            ),
            (
                #"{ "module": "@DIR@/wasm/redact.wasm", "limits": { "memoryPages": 0 } }"#, [:],
                "\(path).limits.memoryPages", "expected a number from 1"
            ),
            (
                #"{ "module": "@DIR@/wasm/redact.wasm", "limits": { "fuel": 1 } }"#, [:], "\(path).limits.fuel",
                "unknown key \"fuel\""
            ),
            (
                #"{ "module": "@DIR@/wasm/redact.wasm", "limits": { "maxBufferedRequestBodyBytes": -1 } }"#, [:],
                "\(path).limits.maxBufferedRequestBodyBytes", "expected a number from 0 to 1073741824, found -1"
            ),
            (#"{ "guestConfig": "x" }"#, [:], path, "missing required key \"module\""),
        ]
        for (config, files, expectedPath, expectedMessage) in cases {
            let issues = try await self.issues(config, files: files, guests: ["redact"])
            #expect(
                issues.contains { $0.path == expectedPath && $0.message.contains(expectedMessage) },
                "\(config): \(issues)"
            )
        }
    }
}
