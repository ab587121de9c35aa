import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

@Suite("Routing through a live gateway")
struct RoutingLiveTests {
    static let config = """
        { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
          "routes": [
            { "name": "any", "backend": "any" },
            { "name": "api", "match": { "pathPrefix": "/api" }, "backend": "api" },
            { "name": "api-post", "match": { "pathPrefix": "/api", "methods": ["POST"] }, "backend": "api-post" },
            { "name": "host", "match": { "hosts": ["shop.test"] }, "backend": "shop" },
            { "name": "wild", "match": { "hosts": ["*.shop.test"] }, "backend": "wild" },
            { "name": "canary", "match": { "pathPrefix": "/api", "headers": { "X-Canary": "yes" } }, "backend": "canary" },
            { "name": "strip", "match": { "pathPrefix": "/old" }, "stripPrefix": true, "backend": "echo" },
            { "name": "rewrite", "match": { "pathPrefix": "/v1" }, "rewritePrefix": "/v2/", "backend": "echo" },
            { "name": "exact", "match": { "path": "/exactly" }, "rewritePrefix": "/elsewhere", "backend": "echo" }
          ],
          "backends": {
            "any": { "plugin": "respond", "config": { "body": "any" } },
            "api": { "plugin": "respond", "config": { "body": "api" } },
            "api-post": { "plugin": "respond", "config": { "body": "api-post", "status": 201 } },
            "shop": { "plugin": "respond", "config": { "body": "shop" } },
            "wild": { "plugin": "respond", "config": { "body": "wild" } },
            "canary": { "plugin": "respond", "config": { "body": "canary" } },
            "echo": { "plugin": "redirect", "config": { "location": "http://echo.test", "status": 302 } }
          } }
        """

    @Test("the most specific route answers")
    func precedence() async throws {
        try await LiveGateway.with(config: Self.config, registry: gatewayRegistry) { gateway in
            let base = "http://127.0.0.1:\(gateway.port("http"))"
            let cases: [(String, [String], String)] = [
                ("/", [], "any"),
                ("/api/users", [], "api"),
                ("/apix", [], "any"),
                ("/api/users", ["-X", "POST"], "api-post"),
                ("/api/users", ["-H", "X-Canary: yes"], "canary"),
                ("/api", ["-H", "Host: shop.test"], "shop"),
                ("/", ["-H", "Host: Shop.Test:8080"], "shop"),
                ("/", ["-H", "Host: eu.shop.test"], "wild"),
                ("/api", ["-H", "Host: a.eu.shop.test"], "api"),
                ("/x/../api/y", ["--path-as-is"], "api"),
            ]
            for (path, arguments, expected) in cases {
                let response = try await Curl.request(base + path, arguments)
                #expect(response.bodyText == expected, "\(path) \(arguments)")
            }
        }
    }

    @Test("stripPrefix and rewritePrefix change the path the backend sees; the query is kept")
    func rewrites() async throws {
        try await LiveGateway.with(config: Self.config, registry: gatewayRegistry) { gateway in
            let base = "http://127.0.0.1:\(gateway.port("http"))"
            let cases = [
                ("/old/a/b?q=1", "http://echo.test/a/b?q=1"),
                ("/old", "http://echo.test/"),
                ("/v1/items", "http://echo.test/v2/items"),
                ("/exactly", "http://echo.test/elsewhere"),
            ]
            for (path, location) in cases {
                let response = try await Curl.request(base + path)
                #expect(response.status == 302)
                #expect(response.header("location") == location, "\(path)")
            }
        }
    }

    @Test("no route: 404 problem+json with the request id, and the connection stays usable")
    func notFound() async throws {
        let config = """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "routes": [ { "match": { "path": "/only" }, "backend": "ok" } ],
              "backends": { "ok": { "plugin": "respond", "config": { "body": "ok" } } } }
            """
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            let response = try await Curl.request(
                "http://127.0.0.1:\(gateway.port("http"))/missing",
                ["-H", "X-Request-ID: trace-123"]
            )
            #expect(response.status == 404)
            #expect(response.header("content-type") == "application/problem+json")
            #expect(response.header("x-request-id") == "trace-123")
            let problem = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
            #expect(problem?["status"] as? Int == 404)
            #expect(problem?["requestId"] as? String == "trace-123")
            #expect(problem?["instance"] as? String == "/missing")
            #expect((problem?["detail"] as? String)?.contains("no route matches GET") == true)

            // A generated id when the client sends none (or an unusable one).
            let generated = try await Curl.request(
                "http://127.0.0.1:\(gateway.port("http"))/missing",
                ["-H", "X-Request-ID: bad id\""]
            )
            #expect(generated.header("x-request-id")?.count == 32)

            // Keep-alive: the 404 and the next request share one connection.
            let connection = try RawConnection(port: gateway.port("http"))
            connection.send("GET /missing HTTP/1.1\r\nHost: a\r\n\r\nGET /only HTTP/1.1\r\nHost: a\r\n\r\n")
            let both = await connection.read(until: "\r\n\r\nok", timeout: 5)
            #expect(both.contains("404 Not Found") && both.hasSuffix("ok"))
        }
    }

    @Test("filters run in order, can refuse, suspend, and change the response head")
    func filters() async throws {
        let config = """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "routes": [ { "backend": "ok", "filters": ["gate", "later"] } ],
              "backends": { "ok": { "plugin": "respond", "config": { "body": "ok" } } },
              "filters": {
                "gate": { "plugin": "test-tag", "config": { "tag": "gate", "blockHeader": true } },
                "later": { "plugin": "test-tag", "config": { "tag": "later", "suspendMilliseconds": 50 } } } }
            """
        try await LiveGateway.with(config: config, registry: testRegistry) { gateway in
            let url = "http://127.0.0.1:\(gateway.port("http"))/"
            let passed = try await Curl.request(url, ["-d", "some body"])
            #expect(passed.status == 200 && passed.bodyText == "ok")
            #expect(passed.headers.filter { $0.name == "x-tag" }.map(\.value) == ["later", "gate"])
            #expect(passed.header("x-request-was-seen-by") == "later")
            let blocked = try await Curl.request(url, ["-H", "X-Block: 1"])
            #expect(blocked.status == 403 && blocked.bodyText == "blocked by gate")
        }
    }

    @Test("HTTP listener with redirectToHTTPS answers 308 to the same host and target")
    func redirectListener() async throws {
        let config = """
            { "listeners": [ { "name": "redirect", "address": "127.0.0.1", "port": 0, "redirectToHTTPS": { "port": 8443 } } ],
              "routes": [], "backends": {} }
            """
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            let response = try await Curl.request(
                "http://127.0.0.1:\(gateway.port("redirect"))/a/b?c=d",
                ["-H", "Host: example.test"]
            )
            #expect(response.status == 308)
            #expect(response.header("location") == "https://example.test:8443/a/b?c=d")
        }
    }
}
