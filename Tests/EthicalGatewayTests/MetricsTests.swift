import EthicalGateway
import EthicalGatewayTesting
import Foundation
import NIOCore
import NIOPosix
import Testing

/// `/metrics` on the admin listener, parsed with the Prometheus client library's parser after
/// known traffic.
@Suite("Metrics", .timeLimit(.minutes(5)))
struct MetricsTests {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// `/metrics` parsed by prometheus_client: the families' types and every sample.
    static func scrape(_ admin: AdminClient) async throws -> (types: [String: String], samples: [Sample]) {
        let response = try await admin.request("GET", "/metrics")
        #expect(response.status == 200)
        #expect(response.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let file = scratch.url.appendingPathComponent("metrics.txt")
        try response.body.write(to: file)
        let script = repositoryRoot.appendingPathComponent("Tests/EthicalGatewayTests/Fixtures/prometheus_parse.py")
        let output = try await ProcessRunner.run("python3", [script.path, file.path])
        guard output.exitCode == 0,
            let parsed = try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any],
            let families = parsed["families"] as? [String: String], let samples = parsed["samples"] as? [[String: Any]]
        else {
            throw AdminTestError(
                message: "prometheus_client could not parse /metrics: \(output.standardError)\n\(response.bodyText)"
            )
        }
        return (
            families,
            samples.map {
                Sample(
                    name: $0["name"] as? String ?? "",
                    labels: $0["labels"] as? [String: String] ?? [:],
                    value: $0["value"] as? Double ?? ($0["value"] as? Int).map(Double.init) ?? .nan
                )
            }
        )
    }

    static func value(_ samples: [Sample], _ name: String, _ labels: [String: String]) -> Double? {
        samples.first { sample in
            sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value }
        }?.value
    }

    @Test(
        "requests by route, method and code, duration and size histograms, refusals, reloads, connections, build info"
    )
    func knownTraffic() async throws {
        let config = ReloadConfig.json(
            extraRoutes:
                #", { "name": "private", "match": { "pathPrefix": "/private" }, "backend": "hello", "auth": { "issuers": ["tests"] } }"#
        ).replacingOccurrences(of: #""admin":"#, with: #""issuers": { "tests": \#(RelayTokens.issuerJSON) }, "admin":"#)
        try await ReloadConfig.withGateway(config) { gateway, admin, base in
            for _ in 0..<5 { #expect(try await Curl.request("\(base)/hello").status == 200) }
            for _ in 0..<2 {
                #expect(
                    try await Curl.request("\(base)/hello", ["-X", "POST", "--data-binary", "0123456789"]).status == 200
                )
            }
            for _ in 0..<3 { #expect(try await Curl.request("\(base)/nowhere").status == 404) }
            #expect(try await Curl.request("\(base)/private").status == 401)
            #expect(
                try await Curl.request("\(base)/private", ["-H", "Authorization: Bearer not.a.token"]).status == 401
            )
            let token = try RelayTokens.mint("alice")
            #expect(try await Curl.request("\(base)/private", ["-H", "Authorization: Bearer \(token)"]).status == 200)
            #expect(try await admin.request("POST", "/reload").status == 200)
            // The relay: one connection subscribed to `news`, two publications.
            let subscriber = try await RelayTestClient.connect(
                port: try #require(gateway.currentPort("http")),
                path: "/relay/connection/websocket",
                tls: false
            )
            defer { subscriber.close() }
            #expect(result(try await subscriber.call("connect"), "connect") != nil)
            #expect(result(try await subscriber.call("subscribe", ["channel": "news"]), "subscribe") != nil)
            for number in 1...2 {
                let published = try await Curl.request(
                    "\(base)/relay/api/publish",
                    [
                        "-X", "POST", "-H", "X-API-Key: \(ReloadConfig.apiKey)", "--data-raw",
                        #"{"channel":"news","data":{"n":\#(number)}}"#,
                    ]
                )
                #expect(published.status == 200)
            }
            _ = try await subscriber.nextPush()
            _ = try await subscriber.nextPush()

            let (types, samples) = try await Self.scrape(admin)
            #expect(Self.value(samples, "gateway_relay_connections", ["backend": "relay"]) == 1)
            #expect(
                Self.value(samples, "gateway_relay_subscriptions", ["backend": "relay", "namespace": "default"]) == 1
            )
            #expect(
                Self.value(samples, "gateway_relay_publications_total", ["backend": "relay", "namespace": "default"])
                    == 2
            )
            #expect(types["gateway_http_requests"] == "counter")
            #expect(types["gateway_http_request_duration_seconds"] == "histogram")
            let requests = "gateway_http_requests_total"
            #expect(Self.value(samples, requests, ["route": "hello", "method": "GET", "code": "200"]) == 5)
            #expect(Self.value(samples, requests, ["route": "hello", "method": "POST", "code": "200"]) == 2)
            #expect(Self.value(samples, requests, ["route": "none", "method": "GET", "code": "404"]) == 3)
            #expect(Self.value(samples, requests, ["route": "private", "method": "GET", "code": "401"]) == 2)
            #expect(Self.value(samples, requests, ["route": "private", "method": "GET", "code": "200"]) == 1)
            // Histograms: every request is in +Inf, counts match, the POST bodies are in the 100-byte bucket.
            let duration = "gateway_http_request_duration_seconds"
            #expect(Self.value(samples, "\(duration)_count", ["route": "hello"]) == 7)
            #expect(Self.value(samples, "\(duration)_bucket", ["route": "hello", "le": "+Inf"]) == 7)
            #expect((Self.value(samples, "\(duration)_sum", ["route": "hello"]) ?? 0) > 0)
            #expect(Self.value(samples, "gateway_http_request_size_bytes_sum", ["route": "hello"]) == 20)
            #expect(
                Self.value(samples, "gateway_http_request_size_bytes_bucket", ["route": "hello", "le": "100"]) == 7
            )
            let responseBytes = Self.value(samples, "gateway_http_response_size_bytes_sum", ["route": "hello"])
            #expect(responseBytes == 42, "\(String(describing: responseBytes))")
            #expect(Self.value(samples, "gateway_auth_refusals_total", ["issuer": "tests", "reason": "missing"]) == 1)
            #expect(Self.value(samples, "gateway_auth_refusals_total", ["reason": "malformed"]) == 1)
            #expect(Self.value(samples, "gateway_config_reloads_total", ["result": "success"]) == 1)
            #expect(Self.value(samples, "gateway_build_info", ["version": GatewayVersion.current]) == 1)
            #expect(Self.value(samples, "gateway_connections_open", ["listener": "http", "protocol": "http"]) != nil)
        }
    }

    @Test("TLS handshakes by listener and result")
    func handshakes() async throws {
        let config = ReloadConfig.json().replacingOccurrences(
            of: #"{ "name": "http", "address": "127.0.0.1", "port": 0 }"#,
            with: #"{ "name": "secure", "address": "127.0.0.1", "port": 0, "tls": {} }"#
        )
        try await ReloadConfig.withGateway(config) { gateway, admin, base in
            let port = try #require(gateway.currentPort("secure"))
            for _ in 0..<2 { #expect(try await Curl.request("https://127.0.0.1:\(port)/hello").status == 200) }
            // Plain HTTP to the TLS port: not a ClientHello.
            let plain = try RawConnection(port: port)
            _ = plain.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = await plain.readUntilClosed(timeout: 10)
            try await waitUntil("the failed handshake is counted", seconds: 20) {
                Self.value(
                    try await Self.scrape(admin).samples,
                    "gateway_tls_handshakes_total",
                    ["listener": "secure", "result": "failure"]
                ) == 1
            }
            let samples = try await Self.scrape(admin).samples
            #expect(
                Self.value(samples, "gateway_tls_handshakes_total", ["listener": "secure", "result": "success"]) == 2
            )
            #expect(
                Self.value(samples, "gateway_connections_open", ["listener": "secure", "protocol": "https"]) != nil
            )
        }
    }

    @Test("upstream answers by code, retries, and upstream health flipping when an upstream dies")
    func upstreams() async throws {
        let alive = try await TestUpstream(name: "alive") { request in
            request.uri == "/health"
                ? .text(status: 200, headers: [], body: "ok") : .text(status: 202, headers: [], body: "yes")
        }
        let dying = try await TestUpstream(name: "dying")
        let config = ReloadConfig.json(
            extraRoutes: #", { "name": "app", "match": { "pathPrefix": "/app" }, "backend": "app" }"#,
            extraBackends: """
                , "app": { "plugin": "http-proxy", "config": {
                    "upstreams": [ { "url": "http://127.0.0.1:\(alive.port)" }, { "url": "http://127.0.0.1:\(dying.port)" } ],
                    "healthCheck": { "path": "/health", "intervalSeconds": 0.1, "timeoutSeconds": 5, "healthyThreshold": 1, "unhealthyThreshold": 1 } } }
                """
        )
        try await ReloadConfig.withGateway(config) { gateway, admin, base in
            let aliveURL = "http://127.0.0.1:\(alive.port)"
            let dyingURL = "http://127.0.0.1:\(dying.port)"
            let healthy = { (samples: [Sample], upstream: String) in
                Self.value(samples, "gateway_upstream_healthy", ["backend": "app", "upstream": upstream])
            }
            #expect(healthy(try await Self.scrape(admin).samples, dyingURL) == 1)
            for _ in 0..<4 { _ = try await Curl.request("\(base)/app/x") }
            await dying.stop()
            try await waitUntil("the dead upstream's gauge drops to 0", seconds: 30) {
                healthy(try await Self.scrape(admin).samples, dyingURL) == 0
            }
            let samples = try await Self.scrape(admin).samples
            #expect(healthy(samples, aliveURL) == 1)
            let answered = Self.value(
                samples,
                "gateway_upstream_requests_total",
                ["backend": "app", "upstream": aliveURL, "code": "202"]
            )
            #expect((answered ?? 0) >= 1, "\(samples.filter { $0.name.hasPrefix("gateway_upstream") })")
        }
        await alive.stop()
    }

    @Test("an upstream closing without an answer counts as code=error; requests routed despite ejection counted")
    func upstreamErrorsAndPanicRouting() async throws {
        let silent = try await ScriptedUpstream(reply: "", closeAfterReply: true)
        let config = ReloadConfig.json(
            extraRoutes: #", { "name": "app", "match": { "pathPrefix": "/app" }, "backend": "app" }"#,
            extraBackends: """
                , "app": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "\(silent.url)" } ],
                    "retries": { "attempts": 0 }, "outlierDetection": { "consecutiveFailures": 1, "baseEjectionSeconds": 60 } } }
                """
        )
        try await ReloadConfig.withGateway(config) { gateway, admin, base in
            // On each event loop (ejection is counted per loop) the first failure ejects the
            // only upstream; the later requests go to it anyway.
            for _ in 0..<5 { #expect(try await Curl.request("\(base)/app/x").status == 502) }
            let samples = try await Self.scrape(admin).samples
            let errors = Self.value(
                samples,
                "gateway_upstream_requests_total",
                ["backend": "app", "upstream": silent.url, "code": "error"]
            )
            #expect(errors == 5, "\(samples.filter { $0.name.hasPrefix("gateway_upstream") })")
            let loops = Double(Array(MultiThreadedEventLoopGroup.singleton.makeIterator()).count)
            let panicRouted = Self.value(samples, "gateway_upstream_panic_routed_total", ["backend": "app"]) ?? 0
            #expect(panicRouted >= 5 - loops && panicRouted <= 4, "\(panicRouted) with \(loops) event loops")
        }
        #expect(silent.requests == 5)
        await silent.stop()
    }

    @Test("upstream request durations: one histogram observation per attempt, in the right bucket")
    func upstreamDurations() async throws {
        let slow = try await TestUpstream(name: "slow") { _ in
            .delayed(seconds: 0.3, .text(status: 200, headers: [], body: "late"))
        }
        let config = ReloadConfig.json(
            extraRoutes: #", { "name": "slow", "match": { "pathPrefix": "/slow" }, "backend": "slow" }"#,
            extraBackends: """
                , "slow": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:\(slow.port)" } ] } }
                """
        )
        try await ReloadConfig.withGateway(config) { gateway, admin, base in
            for _ in 0..<3 { #expect(try await Curl.request("\(base)/slow/x").status == 200) }
            let (types, samples) = try await Self.scrape(admin)
            #expect(types["gateway_upstream_request_duration_seconds"] == "histogram")
            let labels = ["backend": "slow"]
            let name = "gateway_upstream_request_duration_seconds"
            #expect(Self.value(samples, "\(name)_count", labels) == 3)
            // Each took at least the upstream's 0.3 s, and (on any machine) less than 10 s.
            #expect(Self.value(samples, "\(name)_bucket", labels.merging(["le": "0.25"]) { $1 }) == 0)
            #expect(Self.value(samples, "\(name)_bucket", labels.merging(["le": "10"]) { $1 }) == 3)
            #expect((Self.value(samples, "\(name)_sum", labels) ?? 0) >= 0.9)

            // A reload that re-creates the backend (its JSON changed) keeps counting the series.
            let changed = config.replacingOccurrences(
                of: #""upstreams": [ { "url": "http://127.0.0.1:\#(slow.port)" } ] }"#,
                with: #""upstreams": [ { "url": "http://127.0.0.1:\#(slow.port)" } ], "retries": { "attempts": 0 } }"#
            )
            #expect(changed != config)
            try changed.write(
                to: gateway.directory.url.appendingPathComponent("gateway.json"),
                atomically: true,
                encoding: .utf8
            )
            #expect((try? (await gateway.controller.reloadFile(trigger: "test")).get()) != nil)
            #expect(try await Curl.request("\(base)/slow/y").status == 200)
            let after = try await Self.scrape(admin).samples
            #expect(Self.value(after, "\(name)_count", labels) == 4)
        }
        await slow.stop()
    }
}
