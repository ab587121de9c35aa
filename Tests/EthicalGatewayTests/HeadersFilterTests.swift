import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

@Suite("The headers filter")
struct HeadersFilterTests {
    @Test("removes and sets request headers before the backend and response headers after it")
    func live() async throws {
        let upstream = try await TestUpstream(name: "up") { _ in
            .text(status: 200, headers: [("x-internal", "1"), ("x-served-by", "app")], body: "ok")
        }
        let config = plainConfig(
            routes: #"[ { "match": { "pathPrefix": "/" }, "filters": ["tag"], "backend": "app" } ]"#,
            backends:
                #"{ "app": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "\#(upstream.url)" } ] } } }"#,
            extra: #"""
                "filters": { "tag": { "plugin": "headers", "config": {
                  "request": { "remove": ["X-Debug"], "set": { "X-Seen": "1" } },
                  "response": { "remove": ["X-Internal"], "set": { "X-Served-By": "gateway" } } } } }
                """#
        )
        do {
            try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
                let response = try await Curl.request(
                    "http://127.0.0.1:\(gateway.port("http"))/",
                    ["-H", "X-Debug: on", "-H", "X-Seen: spoofed"]
                )
                #expect(response.status == 200 && response.bodyText == "ok")
                #expect(response.header("x-internal") == nil)
                #expect(response.header("x-served-by") == "gateway")
                let seen = try #require(upstream.requests.last)
                #expect(seen.header("x-debug") == nil)
                #expect(seen.headers("x-seen") == ["1"])
            }
            await upstream.stop()
        } catch {
            await upstream.stop()
            throw error
        }
    }

    @Test("a header name that is not a token is an error with its path")
    func badName() async throws {
        let issues = try await configIssues(
            plainConfig(
                routes: #"[ { "match": { "pathPrefix": "/" }, "filters": ["tag"], "backend": "ok" } ]"#,
                backends: #"{ "ok": { "plugin": "respond" } }"#,
                extra:
                    #""filters": { "tag": { "plugin": "headers", "config": { "response": { "set": { "Bad Name": "x" } } } } }"#
            )
        )
        #expect(issues.contains { $0.path == "$.filters.tag.config.response.set" && $0.message.contains("Bad Name") })
    }
}
