import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// The entry point cannot be walked around: each test is a reproduction of a way past route auth,
/// a dropped or refused valid request, or an ambiguous message, sent as raw bytes (or with
/// curl's `--path-as-is`) to a gateway in front of a real upstream that records what reaches it.
@Suite("Request semantics: auth cannot be walked around, valid requests are not dropped")
struct RequestSemanticsTests {
    /// `/admin` and the host `admin.test` need a token; everything else is public. All routes
    /// go to the same upstream, so a request that slips past auth shows up there.
    static func config(upstream: TestUpstream, lab: TokenLab, limits: String = "") -> String {
        let proxy = #"{ "plugin": "http-proxy", "config": { "upstreams": [ { "url": "\#(upstream.url)" } ] } }"#
        return """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 },
                             { "name": "https", "address": "127.0.0.1", "port": 0,
                               "tls": { "hsts": { "maxAgeSeconds": 600, "includeSubDomains": true } } } ],
              "issuers": { "local": { "issuer": "https://issuer.test", "audiences": ["api"], "algorithms": ["ES256"],
                                      "keys": [ \(lab.jwks["ec256"]!) ] } },
              "routes": [
                { "name": "admin", "match": { "pathPrefix": "/admin" }, "backend": "app",
                  "auth": { "issuers": ["local"] } },
                { "name": "admin-host", "match": { "hosts": ["admin.test"] }, "backend": "app",
                  "auth": { "issuers": ["local"] } },
                { "name": "files", "match": { "pathPrefix": "/files" }, "escapedSlashes": "keep", "backend": "app" },
                { "name": "decoded", "match": { "pathPrefix": "/decoded" }, "escapedSlashes": "decode",
                  "backend": "app" },
                { "name": "answer", "match": { "pathPrefix": "/answer" }, "backend": "answer" },
                { "name": "items-delete", "match": { "pathPrefix": "/items", "methods": ["DELETE"] }, "backend": "app",
                  "auth": { "issuers": ["local"] } },
                { "name": "public", "match": { "pathPrefix": "/" }, "backend": "app" }
              ],
              "backends": { "app": \(proxy),
                            "answer": { "plugin": "respond", "config": { "status": 200, "body": "ok" } } }\(limits) }
            """
    }

    static func withGateway(
        limits: String = "",
        _ body: (LiveGateway, TestUpstream) async throws -> Void
    ) async throws {
        let lab = try await TokenLab.shared()
        let upstream = try await TestUpstream(name: "app") { request in
            .text(status: 200, headers: [("content-type", "text/plain")], body: "saw \(request.uri)")
        }
        do {
            try await LiveGateway.with(
                config: Self.config(upstream: upstream, lab: lab, limits: limits),
                registry: gatewayRegistry
            ) { gateway in
                try await body(gateway, upstream)
            }
        } catch {
            await upstream.stop()
            throw error
        }
        await upstream.stop()
    }

    @Test("a method in another case (delete) or not a token is refused on HTTP/1.1 and HTTP/2, reaching no upstream")
    func methodCase() async throws {
        try await Self.withGateway { gateway, upstream in
            for method in ["delete", "Delete", "dELETE"] {
                let raw = try RawConnection(port: gateway.port("http"))
                #expect(raw.send("\(method) /items/1 HTTP/1.1\r\nHost: a\r\n\r\n"))
                let answer = await raw.read(until: "}", timeout: 20)
                #expect(answer.hasPrefix("HTTP/1.1 400"), "\(method): \(answer)")
                #expect(answer.contains("not a token of upper-case letters"), "\(method): \(answer)")
            }
            let https = String(gateway.port("https"))
            for method in ["delete", "G(ET"] {
                let outcome = try await WebSocketHTTP2Tests.scenario("request", [https, method, "/items/1"])
                #expect(outcome["status"] as? Int == 400, "\(method) over h2: \(outcome)")
            }
            #expect(upstream.requests.isEmpty, "\(upstream.requests.map(\.method))")
            // The upper-case spelling is the guarded route's; other methods the public one's.
            let delete = try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/items/1", ["-X", "DELETE"])
            #expect(delete.status == 401)
            let get = try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/items/1")
            #expect(get.status == 200)
            // An extension method in upper case goes on as it is.
            let purge = try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/items/1", ["-X", "PURGE"])
            #expect(purge.status == 200 && upstream.requests.last?.method == "PURGE")
        }
    }

    @Test("an HTTP/2 :path in absolute form cannot name another host than :authority")
    func http2AbsolutePath() async throws {
        try await Self.withGateway { gateway, upstream in
            let https = String(gateway.port("https"))
            // :authority names the guarded host; the absolute :path would route it as public.test.
            let outcome = try await WebSocketHTTP2Tests.scenario(
                "request",
                [https, "GET", "http://public.test/x", "admin.test"]
            )
            #expect(outcome["status"] as? Int == 400, "\(outcome)")
            #expect((outcome["body"] as? String)?.contains(":path must start with /") == true, "\(outcome)")
            #expect(upstream.requests.isEmpty)
            let guarded = try await WebSocketHTTP2Tests.scenario("request", [https, "GET", "/x", "admin.test"])
            #expect(guarded["status"] as? Int == 401, "\(guarded)")
        }
    }

    /// Status codes of every response in `text`, in order.
    static func statuses(_ text: String) -> [Int] {
        text.components(separatedBy: "HTTP/1.").dropFirst().compactMap { Int($0.dropFirst(2).prefix(3)) }
    }

    /// Sends `request` on a new connection, shuts the sending side and returns what came back.
    static func exchange(_ request: String, port: Int) async throws -> String {
        let connection = try RawConnection(port: port)
        await connection.sendOffThread(request)
        connection.finishSending()
        return await connection.readUntilClosed(timeout: 10).text
    }

    /// Paths that must never reach the upstream as (or decoded to) `/admin/...` without a token:
    /// 401 means they were routed to `/admin` and asked for a token, 400 that they were refused.
    static let bypassAttempts: [(path: String, status: Int)] = [
        ("/admin/secret.txt", 401),
        ("/%61dmin/secret.txt", 401),
        ("/%41dmin/secret.txt", 200),
        ("/admin%2fsecret.txt", 400),
        ("/admin%2Fsecret.txt", 400),
        ("/admin%5csecret.txt", 400),
        ("/public/%2e%2e/admin/secret.txt", 401),
        ("/public/%2E%2e/admin/secret.txt", 401),
        ("/public/../admin/secret.txt", 401),
        ("/public/..%2fadmin/secret.txt", 400),
        ("/public/..;/admin/secret.txt", 400),
        ("//admin/secret.txt", 401),
        ("/./admin/secret.txt", 401),
        ("/admin/", 401),
        ("/admin", 401),
        ("/%c0%afadmin/secret.txt", 400),
        ("/public/%c0%ae%c0%ae/admin/secret.txt", 400),
        ("/admin%00/secret.txt", 400),
        ("/ADMIN/secret.txt", 200),
    ]

    @Test("encoded, dotted and doubled paths are routed as the upstream would read them (HTTP/1.1)")
    func pathMatrixHTTP1() async throws {
        try await Self.withGateway { gateway, upstream in
            for attempt in Self.bypassAttempts {
                let answer = try await Self.exchange(
                    "GET \(attempt.path) HTTP/1.1\r\nHost: public.test\r\n\r\n",
                    port: gateway.port("http")
                )
                #expect(Self.statuses(answer) == [attempt.status], "\(attempt.path): \(answer.prefix(200))")
            }
            let seen = upstream.requests.map(\.uri)
            // Only the paths that are public (the case-different /ADMIN and /Admin) reached it.
            #expect(seen == ["/Admin/secret.txt", "/ADMIN/secret.txt"])
        }
    }

    @Test("the same matrix over HTTP/2 (curl --path-as-is)")
    func pathMatrixHTTP2() async throws {
        try await Self.withGateway { gateway, upstream in
            for attempt in Self.bypassAttempts where !attempt.path.contains("%00") {
                let response = try await Curl.request(
                    "https://127.0.0.1:\(gateway.port("https"))\(attempt.path)",
                    ["--http2", "--path-as-is", "-H", "Host: public.test"]
                )
                #expect(response.httpVersion == "2")
                #expect(response.status == attempt.status, "\(attempt.path)")
            }
            #expect(upstream.requests.map(\.uri) == ["/Admin/secret.txt", "/ADMIN/secret.txt"])
        }
    }

    @Test("the upstream gets the canonical path: decoded unreserved escapes, resolved dots, merged slashes")
    func forwardedForm() async throws {
        try await Self.withGateway { gateway, upstream in
            let cases = [
                ("/pub%6cic//a/./b/../c%20d?x=%2e%2e", "/public/a/c%20d?x=%2e%2e"),
                ("/files/a%2fb/c", "/files/a%2Fb/c"),
                ("/decoded/a%2Fb/c", "/decoded/a/b/c"),
                ("/decoded/x/..%2F..%2Fadmin", nil),
            ]
            for (path, forwarded) in cases {
                let answer = try await Self.exchange(
                    "GET \(path) HTTP/1.1\r\nHost: public.test\r\n\r\n",
                    port: gateway.port("http")
                )
                if let forwarded {
                    #expect(answer.contains("saw \(forwarded)"), "\(path): \(answer.prefix(300))")
                } else {
                    // Decoded, this is /admin: auth applies, and admin refuses encoded slashes.
                    #expect(Self.statuses(answer) == [400], "\(path)")
                }
            }
        }
    }

    @Test("two Host fields are refused; an absolute-form target is accepted and its authority routes and is forwarded")
    func hosts() async throws {
        try await Self.withGateway { gateway, upstream in
            let port = gateway.port("http")
            let twoHosts = try await Self.exchange(
                "GET /x HTTP/1.1\r\nHost: public.test\r\nHost: admin.test\r\n\r\n",
                port: port
            )
            #expect(Self.statuses(twoHosts) == [400])
            let toAdmin = try await Self.exchange(
                "GET http://admin.test/x HTTP/1.1\r\nHost: public.test\r\n\r\n",
                port: port
            )
            #expect(Self.statuses(toAdmin) == [401])
            #expect(upstream.requests.isEmpty)
            let toPublic = try await Self.exchange(
                "GET http://public.test/x?q=1 HTTP/1.1\r\nHost: admin.test\r\n\r\n",
                port: port
            )
            #expect(Self.statuses(toPublic) == [200])
            let seen = try #require(upstream.requests.last)
            #expect(seen.uri == "/x?q=1")
            #expect(seen.headers("host") == ["public.test"])
            #expect(seen.header("x-forwarded-host") == "public.test")
            let badHost = try await Self.exchange("GET /x HTTP/1.1\r\nHost: a/b\r\n\r\n", port: port)
            #expect(Self.statuses(badHost) == [400])
            #expect(upstream.requests.count == 1)
        }
    }

    @Test("pipelined requests through http-proxy are all answered, in order, also after the client's half-close")
    func pipelining() async throws {
        try await Self.withGateway { gateway, upstream in
            let port = gateway.port("http")
            let three = try await Self.exchange(
                "GET /p1 HTTP/1.1\r\nHost: a\r\n\r\nGET /p2 HTTP/1.1\r\nHost: a\r\n\r\nGET /answer HTTP/1.1\r\nHost: a\r\n\r\n",
                port: port
            )
            #expect(Self.statuses(three) == [200, 200, 200])
            let first = three.range(of: "saw /p1")?.lowerBound
            let second = three.range(of: "saw /p2")?.lowerBound
            #expect(first != nil && second != nil && first! < second!)
            let http10 = try await Self.exchange(
                "GET /q1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /q2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                port: port
            )
            #expect(Self.statuses(http10) == [200, 200])
            #expect(upstream.requests.map(\.uri) == ["/p1", "/p2", "/q1", "/q2"])
        }
    }

    @Test("pipelined requests over TLS are answered, also when the client ends with a plain FIN")
    func pipeliningTLS() async throws {
        try await Self.withGateway { gateway, upstream in
            let script = """
                import os, socket, ssl, sys
                port, mode = int(sys.argv[1]), sys.argv[2]
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                conn = context.wrap_socket(raw, server_hostname="localhost")
                conn.sendall(b"GET /t1 HTTP/1.1\\r\\nHost: a\\r\\n\\r\\nGET /t2 HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
                if mode == "fin":
                    # A TCP FIN without close_notify (a "ragged" end), on a duplicate of the socket.
                    socket.socket(fileno=os.dup(conn.fileno())).shutdown(socket.SHUT_WR)
                received = b""
                while True:
                    try:
                        chunk = conn.recv(65536)
                    except (ssl.SSLError, OSError):
                        break
                    if not chunk:
                        break
                    received += chunk
                    if received.count(b"saw /t") == 2:
                        break
                print(received.decode("latin-1"))
                """
            for mode in ["fin", "open"] {
                let output = try await ProcessRunner.run(
                    "python3",
                    ["-c", script, "\(gateway.port("https"))", mode],
                    timeout: 20
                )
                #expect(Self.statuses(output.standardOutput) == [200, 200], "\(mode): \(output.standardError)")
            }
            #expect(upstream.requests.map(\.uri) == ["/t1", "/t2", "/t1", "/t2"])
        }
    }

    @Test("request bodies of 60 KB are not mistaken for oversized heads (no spurious 431)")
    func largeBodiesOnKeepAlive() async throws {
        try await Self.withGateway { gateway, upstream in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let body = String(repeating: "x", count: 60_000)
            let file = try directory.write(body, to: "body60k")
            for scheme in ["http", "https"] {
                let url = "\(scheme)://127.0.0.1:\(gateway.port(scheme))"
                let output = try await ProcessRunner.run(
                    "curl",
                    [
                        "-sk", "--http1.1", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                        "-w", "%{http_code} ", "--data-binary", "@\(file.path)",
                        "\(url)/answer", "\(url)/p", "\(url)/answer",
                    ],
                    timeout: 30
                )
                #expect(output.standardOutput == "200 200 200 ", "\(scheme)")
            }
            // Head and body in one write, three times on one connection.
            let request = "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 60000\r\n\r\n" + body
            let answer = try await Self.exchange(request + request + request, port: gateway.port("http"))
            #expect(Self.statuses(answer) == [200, 200, 200])
            #expect(
                upstream.requests.filter { $0.uri == "/p" }.map(\.bodyBytes) == [
                    60_000, 60_000, 60_000, 60_000, 60_000,
                ]
            )
        }
    }

    @Test("a head over the limit still gets 431, as a problem document with a request id")
    func oversizedHead() async throws {
        try await Self.withGateway { gateway, upstream in
            let connection = try RawConnection(port: gateway.port("http"))
            await connection.sendOffThread(
                "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + String(repeating: "y", count: 80_000) + "\r\n\r\n"
            )
            let answer = await connection.readUntilClosed(timeout: 10).text
            #expect(Self.statuses(answer) == [431])
            #expect(answer.lowercased().contains("x-request-id: "))
            #expect(answer.contains("application/problem+json"))
            #expect(upstream.requests.isEmpty)
        }
    }

    @Test("Transfer-Encoding other than a single chunked is refused with 501 and never forwarded")
    func transferEncodings() async throws {
        try await Self.withGateway { gateway, upstream in
            for coding in ["identity, chunked", "chunked, identity", "xchunked"] {
                let answer = try await Self.exchange(
                    "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \(coding)\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
                    port: gateway.port("http")
                )
                #expect(
                    Self.statuses(answer).first == 501 || Self.statuses(answer).first == 400,
                    "\(coding): \(answer)"
                )
            }
            #expect(upstream.requests.isEmpty)
        }
    }

    @Test("HSTS is sent on the TLS listener that asks for it, and never over plain HTTP")
    func hsts() async throws {
        try await Self.withGateway { gateway, _ in
            let secure = try await Curl.request("https://127.0.0.1:\(gateway.port("https"))/answer", ["--http2"])
            #expect(secure.header("strict-transport-security") == "max-age=600; includeSubDomains")
            let refused = try await Curl.request("https://127.0.0.1:\(gateway.port("https"))/admin", ["--http1.1"])
            #expect(refused.status == 401)
            #expect(refused.header("strict-transport-security") == "max-age=600; includeSubDomains")
            let plain = try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/answer")
            #expect(plain.header("strict-transport-security") == nil)
        }
    }
}

@Suite("A proxied request slower than the idle timeout")
struct IdleTimeoutTests {
    @Test("is not cut while the upstream works on it (firstByteSeconds governs, not idleTimeoutSeconds)")
    func slowUpstream() async throws {
        let upstream = try await TestUpstream(name: "slow") { _ in
            .delayed(seconds: 2.5, .text(status: 200, headers: [], body: "late"))
        }
        let config = plainConfig(
            routes: #"[ { "backend": "slow" } ]"#,
            backends:
                #"{ "slow": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "\#(upstream.url)" } ] } } }"#,
            extra: #""limits": { "idleTimeoutSeconds": 0.8 }"#
        )
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            let response = try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/")
            #expect(response.status == 200)
            #expect(response.bodyText == "late")
            // An idle connection is still closed by the idle timeout (0.8 s), silently: not by
            // the 10 s header-read timeout, which would answer 408 first.
            let connection = try RawConnection(port: gateway.port("http"))
            let idle = await connection.readUntilClosed(timeout: 15)
            #expect(idle.closed)
            #expect(idle.text.isEmpty, "closed by something else than the idle timeout: \(idle.text.prefix(100))")
        }
        await upstream.stop()
    }
}
