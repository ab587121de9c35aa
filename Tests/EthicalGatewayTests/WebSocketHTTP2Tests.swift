import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// WebSocket over HTTP/2 (RFC 8441 extended CONNECT) on the TLS listener with ALPN h2, driven
/// by an independent client (`Fixtures/h2_websocket.py`: the `h2` package for HTTP/2, the
/// `websockets` package's frames and permessage-deflate) and by headless Chromium: the
/// `websocket-echo` backend, the relay in both formats, `http-proxy` to an HTTP/1.1 WebSocket
/// upstream, route auth, malformed CONNECTs, and many WebSockets on one connection.
@Suite("WebSocket over HTTP/2 (RFC 8441)", .timeLimit(.minutes(5)))
struct WebSocketHTTP2Tests {
    static let script = repositoryRoot.appendingPathComponent("Tests/EthicalGatewayTests/Fixtures/h2_websocket.py")

    /// Runs a scenario of the fixture; its JSON result.
    static func scenario(_ name: String, _ arguments: [String]) async throws -> [String: Any] {
        let output = try await ProcessRunner.run("python3", [Self.script.path, name] + arguments, timeout: 90)
        guard output.exitCode == 0,
            let object = try? JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any]
        else {
            throw ProcessRunnerError(
                message: "h2_websocket.py \(name) failed (\(output.exitCode)): \(output.standardError.suffix(2000))"
            )
        }
        return object
    }

    /// A TLS listener (development certificate, ALPN h2) with an echo route, the same echo
    /// behind auth, and, with `upstream`, an `http-proxy` route to it.
    static func config(upstream: String? = nil, accessLog: Bool = false) -> String {
        let proxied =
            upstream.map {
                #", { "name": "proxied", "match": { "pathPrefix": "/proxied" }, "stripPrefix": true, "backend": "upstream" }"#
                    + #", { "name": "proxied-auth", "match": { "pathPrefix": "/guarded" }, "stripPrefix": true, "#
                    + #""backend": "upstream", "auth": { "issuers": ["tests"] } }"#
                    + "], \"backends\": { \"upstream\": { \"plugin\": \"http-proxy\", \"config\": "
                    + "{ \"upstreams\": [ { \"url\": \"\($0)\" } ] } }, "
            } ?? "], \"backends\": { "
        return """
            { "listeners": [ { "name": "https", "address": "127.0.0.1", "port": 0, "tls": {} } ],
              \(accessLog ? #""accessLog": { "output": "access.log" },"# : "")
              "issuers": { "tests": \(RelayTokens.issuerJSON) },
              "routes": [ { "name": "echo", "match": { "pathPrefix": "/echo", "methods": ["GET"] }, "backend": "echo" },
                          { "name": "secure", "match": { "pathPrefix": "/secure" }, "backend": "echo",
                            "auth": { "issuers": ["tests"] } }\(proxied)
                "echo": { "plugin": "websocket-echo", "config": {} } } }
            """
    }

    @Test(
        "the echo backend over h2: SETTINGS_ENABLE_CONNECT_PROTOCOL, 200 without Accept, text, binary, fragments with a ping between, 200 KB, close handshake",
        arguments: [false, true]
    )
    func echo(deflate: Bool) async throws {
        try await LiveGateway.with(config: Self.config(), registry: gatewayRegistry) { gateway in
            let outcome = try await Self.scenario(
                "echo",
                [String(gateway.port("https")), "/echo/room"] + (deflate ? ["--deflate"] : [])
            )
            #expect(outcome["enable_connect_protocol"] as? Int == 1)
            #expect(outcome["status"] as? Int == 200)
            #expect(outcome["accept_header"] as? Bool == false)
            #expect(outcome["extensions"] as? String == (deflate ? "permessage-deflate" : nil))
            #expect(outcome["text"] as? String == "hello over h2")
            // The echo compresses what it sends when deflate was negotiated.
            #expect(outcome["text_compressed"] as? Bool == deflate)
            #expect(outcome["binary_ok"] as? Bool == true)
            #expect(outcome["pong"] as? String == "between")
            #expect(outcome["fragmented"] as? String == "fragmented")
            #expect(outcome["large_ok"] as? Bool == true)
            let close = try #require(outcome["close"] as? [String: Any], "\(outcome)")
            #expect(close["code"] as? Int == 1000)
            // The stream ends with END_STREAM both ways, not a reset (RFC 8441 section 5).
            #expect(close["server_ended_stream"] as? Bool == true)
            #expect(close["reset"] is NSNull)
        }
    }

    @Test("malformed and unsupported CONNECTs are refused as RFC 9113 and RFC 8441 say, and the connection serves on")
    func malformed() async throws {
        try await LiveGateway.with(config: Self.config(), registry: gatewayRegistry) { gateway in
            let outcome = try await Self.scenario("malformed", [String(gateway.port("https")), "/echo"])
            func status(_ name: String) -> Int? { (outcome[name] as? [String: Any])?["status"] as? Int }
            func reset(_ name: String) -> String? { (outcome[name] as? [String: Any])?["reset"] as? String }
            func detail(_ name: String) -> String { (outcome[name] as? [String: Any])?["detail"] as? String ?? "" }
            // Missing :path or :scheme, or :protocol on a GET: malformed, a stream error.
            #expect(reset("missing_path") == "PROTOCOL_ERROR" && status("missing_path") == nil, "\(outcome)")
            #expect(reset("missing_scheme") == "PROTOCOL_ERROR" && status("missing_scheme") == nil, "\(outcome)")
            #expect(reset("protocol_on_get") == "PROTOCOL_ERROR" && status("protocol_on_get") == nil, "\(outcome)")
            // Well-formed, but not something the gateway does: answered, with the reason.
            #expect(status("unknown_protocol") == 501, "\(outcome)")
            #expect(detail("unknown_protocol").contains("\"chat\""), "\(outcome)")
            #expect(status("plain_connect") == 501, "\(outcome)")
            #expect(detail("plain_connect").contains("not a forward proxy"), "\(outcome)")
            // A plain GET to a WebSocket endpoint is told how to open one over HTTP/2.
            #expect(status("get_to_websocket") == 400, "\(outcome)")
            #expect(detail("get_to_websocket").contains("extended CONNECT"), "\(outcome)")
            let after = try #require(outcome["after"] as? [String: Any], "\(outcome)")
            #expect(after["status"] as? Int == 200)
            #expect(after["echo"] as? String == "still here")
            #expect(after["terminated"] is NSNull)
        }
    }

    @Test(
        "20 WebSockets on one h2 connection: one closed with a close handshake and one reset leave the others working"
    )
    func manyOnOneConnection() async throws {
        try await LiveGateway.with(config: Self.config(), registry: gatewayRegistry) { gateway in
            let outcome = try await Self.scenario("many", [String(gateway.port("https")), "/echo", "20"])
            #expect(outcome["statuses"] as? [Int] == Array(repeating: 200, count: 20))
            #expect(outcome["first_round"] as? Int == 20)
            let closed = try #require(outcome["closed"] as? [String: Any], "\(outcome)")
            #expect(closed["code"] as? Int == 1001)
            #expect(closed["server_ended_stream"] as? Bool == true)
            #expect(outcome["second_round"] as? Int == 18)
            #expect(outcome["terminated"] is NSNull)
        }
    }

    @Test("route auth applies to an extended CONNECT as to an HTTP/1.1 upgrade: 401 without a token, 200 with one")
    func auth() async throws {
        try await LiveGateway.with(config: Self.config(), registry: gatewayRegistry) { gateway in
            let port = String(gateway.port("https"))
            let refused = try await Self.scenario("status", [port, "/secure"])
            #expect(refused["status"] as? Int == 401)
            let headers = try #require(refused["headers"] as? [String: Any])
            #expect((headers["www-authenticate"] as? String)?.hasPrefix("Bearer") == true)
            let token = try RelayTokens.mint("alice")
            let accepted = try await Self.scenario("status", [port, "/secure", "authorization=Bearer \(token)"])
            #expect(accepted["status"] as? Int == 200)
        }
    }

    @Test(
        "the relay over h2: connect, subscribe, a publication by the HTTP API pushed, in JSON and Protobuf",
        arguments: [false, true]
    )
    func relay(protobuf: Bool) async throws {
        try await RelayGateway.with { gateway in
            let outcome = try await Self.scenario(
                "relay",
                [String(gateway.port("https")), try RelayTokens.mint("alice"), RelayGateway.apiKey]
                    + (protobuf ? ["--protobuf"] : [])
            )
            #expect(outcome["status"] as? Int == 200)
            #expect(outcome["subprotocol"] as? String == (protobuf ? "centrifuge-protobuf" : "centrifuge-json"))
            #expect(outcome["connected"] as? Bool == true)
            #expect(outcome["subscribed"] as? Bool == true)
            #expect(outcome["channel"] as? String == "chat:h2")
            #expect((outcome["data"] as? [String: Any])?["text"] as? String == "pushed over h2")
            let close = try #require(outcome["close"] as? [String: Any], "\(outcome)")
            #expect(close["code"] as? Int == 1000)
        }
    }

    @Test("HTTP/2 cookie crumbs reach an HTTP/1.1 upstream as one Cookie field, and count as one")
    func cookieCrumbs() async throws {
        let upstream = try await TestUpstream(name: "app")
        try await LiveGateway.with(config: Self.config(upstream: upstream.url), registry: gatewayRegistry) { gateway in
            let port = String(gateway.port("https"))
            // 120 crumbs: over the default limit of 100 fields if each counted as one.
            let outcome = try await Self.scenario("cookies", [port, "/proxied/x", "120"])
            #expect(outcome["status"] as? Int == 200, "\(outcome)")
        }
        let request = try #require(upstream.requests.first)
        let cookies = request.headers("cookie")
        #expect(cookies.count == 1)
        #expect(cookies.first == (0..<120).map { "c\($0)=v\($0)" }.joined(separator: "; "))
        await upstream.stop()
    }

    @Test("an HTTP/2 GET or DELETE with a body and no content-length reaches an HTTP/1.1 upstream with it, framed")
    func bodyWithoutLength() async throws {
        let upstream = try await TestUpstream(name: "app") { request in
            .text(status: 200, headers: [], body: "\(request.method) \(request.bodyBytes) \(request.bodyText)")
        }
        try await LiveGateway.with(config: Self.config(upstream: upstream.url), registry: gatewayRegistry) { gateway in
            let port = String(gateway.port("https"))
            for method in ["GET", "DELETE", "OPTIONS", "POST"] {
                let outcome = try await Self.scenario("body", [port, method, "/proxied/x", "the body of \(method)"])
                #expect(outcome["status"] as? Int == 200, "\(method): \(outcome)")
                let expected = "\(method) \("the body of \(method)".utf8.count) the body of \(method)"
                #expect(outcome["body"] as? String == expected, "\(method): \(outcome)")
            }
        }
        // Each went up as one request with its body framed: nothing arrived as a request of its own.
        #expect(upstream.requests.map(\.method) == ["GET", "DELETE", "OPTIONS", "POST"])
        await upstream.stop()
    }

    @Test("HTTP/2 responses leave per-response fields (X-Request-ID, Content-Length) out of the client's HPACK table")
    func hpackIndexing() async throws {
        try await LiveGateway.with(config: Self.config(), registry: gatewayRegistry) { gateway in
            let outcome = try await Self.scenario("hpack", [String(gateway.port("https")), "/nowhere", "30"])
            #expect((outcome["statuses"] as? [Int]) == Array(repeating: 404, count: 30), "\(outcome)")
            let ids = (outcome["requestIds"] as? [String]) ?? []
            #expect(Set(ids).count == 30, "every response has its own request id: \(ids)")
            let dynamic = ((outcome["dynamic"] as? [[String]]) ?? []).map { $0.first ?? "" }
            #expect(!dynamic.contains("x-request-id") && !dynamic.contains("content-length"), "\(dynamic)")
            // What repeats is still indexed, so it costs a byte on the next response.
            #expect(dynamic.contains("content-type"), "\(dynamic)")
            #expect(dynamic.count <= 4, "\(dynamic)")
        }
    }

    @Test("an extended CONNECT to a uni-directional relay transport is refused at once (400), not left open")
    func relayUniRefusesWebSocket() async throws {
        try await RelayGateway.with { gateway in
            let port = String(gateway.port("https"))
            for path in ["/relay/connection/uni_sse", "/relay/connection/uni_http_stream"] {
                let outcome = try await Self.scenario("status", [port, path])
                #expect(outcome["status"] as? Int == 400, "\(path): \(outcome)")
                let body = outcome["body"] as? [String: Any]
                #expect((body?["detail"] as? String)?.contains("/connection/websocket") == true, "\(path): \(outcome)")
            }
            // The WebSocket endpoint itself still opens over h2.
            let accepted = try await Self.scenario("status", [port, "/relay/connection/websocket"])
            #expect(accepted["status"] as? Int == 200, "\(accepted)")
        }
    }

    @Test("http-proxy: an h2 WebSocket reaches an HTTP/1.1 WebSocket upstream (websockets) and frames flow both ways")
    func proxyToWebSocketUpstream() async throws {
        let echoScript = repositoryRoot.appendingPathComponent("Tests/EthicalGatewayTests/Fixtures/websocket_echo.py")
        let upstream = try ChildProcess("python3", [echoScript.path, "server"])
        defer { upstream.stop() }
        let upstreamPort = try #require(Int(try await upstream.firstLine()))
        let config = Self.config(upstream: "http://127.0.0.1:\(upstreamPort)")
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            let port = String(gateway.port("https"))
            let outcome = try await Self.scenario("proxy", [port, "/proxied/chat"])
            #expect(outcome["status"] as? Int == 200)
            #expect(outcome["accept_header"] as? Bool == false)
            #expect(outcome["replies"] as? [String] == ["echo: message 0", "echo: message 1", "echo: message 2"])
            let close = try #require(outcome["close"] as? [String: Any], "\(outcome)")
            #expect(close["code"] as? Int == 1000)
            #expect(close["reason"] as? String == "done")
            // Auth on a proxied route: refused before the upstream is asked.
            let refused = try await Self.scenario("status", [port, "/guarded/chat"])
            #expect(refused["status"] as? Int == 401)
        }
    }

    @Test(
        "http-proxy: the upstream gets an HTTP/1.1 opening with a fresh key; its refusal reaches the client, a wrong Accept or a plain 200 is a 502"
    )
    func proxyUpstreamAnswers() async throws {
        let refusing = try await TestUpstream(name: "refusing") { _ in
            .text(status: 403, headers: [("content-type", "text/plain")], body: "no sockets for you")
        }
        let wrongAccept = try await TestUpstream(name: "wrong-accept") { _ in
            .text(
                status: 101,
                headers: [("upgrade", "websocket"), ("connection", "upgrade"), ("sec-websocket-accept", "d3Jvbmc=")],
                body: ""
            )
        }
        // A 2xx to an extended CONNECT means the tunnel is open (RFC 8441): an ordinary 200 is not one.
        let plain = try await TestUpstream(name: "plain") { _ in
            .text(status: 200, headers: [("content-type", "text/plain")], body: "not a websocket")
        }
        for (upstream, expected) in [(refusing, 403), (wrongAccept, 502), (plain, 502)] {
            try await LiveGateway.with(config: Self.config(upstream: upstream.url), registry: gatewayRegistry) {
                gateway in
                let outcome = try await Self.scenario(
                    "status",
                    [String(gateway.port("https")), "/proxied/ws", "sec-websocket-protocol=chat.v1"]
                )
                #expect(outcome["status"] as? Int == expected, "\(upstream.name): \(outcome)")
            }
            let request = try #require(upstream.requests.first, "\(upstream.name) saw no request")
            #expect(request.method == "GET")
            #expect(request.uri == "/ws")
            #expect(request.header("upgrade")?.lowercased() == "websocket")
            #expect(request.header("connection")?.lowercased() == "upgrade")
            #expect(request.header("sec-websocket-version") == "13")
            #expect(request.header("sec-websocket-protocol") == "chat.v1")
            let key = try #require(request.header("sec-websocket-key"))
            #expect(Data(base64Encoded: key)?.count == 16)
        }
        #expect(
            refusing.requests.first?.header("sec-websocket-key")
                != wrongAccept.requests.first?.header("sec-websocket-key")
        )
        await refusing.stop()
        await wrongAccept.stop()
    }

    @Test(
        "headless Chromium opens wss:// over the h2 connection of the page it loaded (RFC 8441), echo round trip",
        .enabled(
            if: HeadlessChromium.executable != nil,
            "chromium is not installed (apt-get install chromium; .ci/run installs it)"
        )
    )
    func chromium() async throws {
        try await LiveGateway.with(config: Self.config(accessLog: true), registry: gatewayRegistry) { gateway in
            let origin = "https://127.0.0.1:\(gateway.port("https"))"
            // A page from the gateway first: Chromium uses RFC 8441 only on an h2 connection it
            // already holds to the origin, one that advertised SETTINGS_ENABLE_CONNECT_PROTOCOL.
            let browser = try HeadlessChromium(opening: "\(origin)/secure/page")
            defer { browser.stop() }
            // The blank page Chromium starts on is "complete" too: wait for the gateway's page.
            _ = try await browser.waitFor("location.origin === '\(origin)' && document.readyState === 'complete'")
            let echoed = try await browser.evaluate(
                """
                new Promise((resolve, reject) => {
                    const ws = new WebSocket("wss://127.0.0.1:\(gateway.port("https"))/echo/browser");
                    ws.onopen = () => ws.send("from chromium");
                    ws.onmessage = (event) => { resolve(event.data); ws.close(1000); };
                    ws.onerror = () => reject(new Error("websocket error"));
                    setTimeout(() => reject(new Error("no echo in 10 s")), 10000);
                })
                """
            )
            #expect(echoed as? String == "from chromium")
            let file = gateway.directory.url.appendingPathComponent("access.log")
            var record: [String: Any]?
            try await waitUntil("the WebSocket is in the access log", seconds: 15) {
                let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
                record = text.split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }.first { $0["path"] as? String == "/echo/browser" }
                return record != nil
            }
            #expect(record?["protocol"] as? String == "HTTP/2", "\(record ?? [:])")
            #expect(record?["status"] as? Int == 200, "\(record ?? [:])")
        }
    }
}
