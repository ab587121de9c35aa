import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

@Suite("The wasm filter's request bodies, trailers and is_error over a live gateway")
struct WasmRequestBodyTests {
    static let guests = ["request-body", "response-meta"]

    /// The `request-body` guest in front of an echoing upstream (request bodies up to 100,000
    /// bytes held), and the `response-meta` guest in front of it and of a closed port.
    static func config(upstreamPort: Int, closedPort: Int, idleTimeoutSeconds: Double = 60) -> String {
        """
        { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 },
                         { "name": "https", "address": "127.0.0.1", "port": 0, "tls": {} } ],
          "limits": { "idleTimeoutSeconds": \(idleTimeoutSeconds) },
          "filters": {
            "body": { "plugin": "wasm", "config": { "module": "wasm/request-body.wasm",
                                                    "limits": { "maxBufferedRequestBodyBytes": 100000 } } },
            "meta": { "plugin": "wasm", "config": { "module": "wasm/response-meta.wasm" } },
            "meta-streamed": { "plugin": "wasm", "config": { "module": "wasm/response-meta.wasm", "guestConfig": "stream" } }
          },
          "routes": [
            { "name": "body", "match": { "pathPrefix": "/body" }, "filters": ["body"], "backend": "upstream" },
            { "name": "meta", "match": { "pathPrefix": "/meta" }, "filters": ["meta"], "backend": "upstream" },
            { "name": "down", "match": { "pathPrefix": "/down" }, "filters": ["meta"], "backend": "closed" },
            { "name": "late", "match": { "pathPrefix": "/late" }, "filters": ["meta"], "backend": "impatient" },
            { "name": "down-streamed", "match": { "pathPrefix": "/streamed/down" }, "filters": ["meta-streamed"],
              "backend": "closed" },
            { "name": "streamed", "match": { "pathPrefix": "/streamed" }, "filters": ["meta-streamed"], "backend": "upstream" },
            { "name": "plain", "match": { "pathPrefix": "/plain" }, "backend": "upstream" }
          ],
          "backends": {
            "upstream": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:\(upstreamPort)" } ] } },
            "closed": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:\(closedPort)" } ] } },
            "impatient": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:\(upstreamPort)" } ],
                                                                "timeouts": { "firstByteSeconds": 0.3 } } }
          } }
        """
    }

    /// The upstream answers with what it received: `<method> <body bytes> <body>`; under
    /// `/late`, two seconds late.
    static func echo(_ request: RecordedRequest) -> UpstreamReply {
        let reply = UpstreamReply.text(
            status: 200,
            headers: [("content-type", "text/plain")],
            body: "\(request.method) \(request.bodyBytes) \(request.bodyText)"
        )
        return request.uri.hasPrefix("/late") ? .delayed(seconds: 2, reply) : reply
    }

    func withGateway(
        idleTimeoutSeconds: Double = 60,
        _ body: (LiveGateway, TestUpstream) async throws -> Void
    ) async throws {
        let folder = try await WasmGuests.folder()
        let upstream = try await TestUpstream(name: "up", reply: Self.echo)
        let closed = try ClosedPort()
        do {
            try await LiveGateway.with(
                config: Self.config(
                    upstreamPort: upstream.port,
                    closedPort: closed.port,
                    idleTimeoutSeconds: idleTimeoutSeconds
                ),
                registry: gatewayRegistry,
                prepare: { try WasmGuests.install(Self.guests, into: $0, from: folder) }
            ) { gateway in
                try await body(gateway, upstream)
            }
            await upstream.stop()
        } catch {
            await upstream.stop()
            throw error
        }
    }

    static let json = #"{"user":"alice","password":"hunter2","note":"hi"}"#
    static let redacted = #"{"user":"alice","password":"***","note":"hi"}"#

    @Test(
        "a Content-Length body is held, rewritten by the guest and sent on with a fresh Content-Length (HTTP/1.1 and HTTP/2)"
    )
    func rewrite() async throws {
        try await self.withGateway { gateway, upstream in
            for (scheme, flag) in [("http", "--http1.1"), ("https", "--http2")] {
                let response = try await Curl.request(
                    "\(scheme)://127.0.0.1:\(gateway.port(scheme))/body/x",
                    [flag, "-H", "Content-Type: application/json", "--data-binary", Self.json]
                )
                #expect(response.status == 200, "\(scheme)")
                #expect(response.bodyText == "POST \(Self.redacted.utf8.count) \(Self.redacted)", "\(scheme)")
                let seen = try #require(upstream.requests.last)
                #expect(seen.header("content-length") == String(Self.redacted.utf8.count), "\(scheme)")
                #expect(seen.header("transfer-encoding") == nil, "\(scheme)")
                #expect(seen.header("x-body-bytes-seen") == String(Self.json.utf8.count), "\(scheme)")
            }
            // A request without a body goes through unchanged, without a Content-Length added.
            let get = try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/body/get")
            #expect(get.status == 200 && get.bodyText == "GET 0 ")
            #expect(upstream.requests.last?.header("content-length") == nil)
            #expect(upstream.requests.last?.header("x-body-bytes-seen") == "0")
        }
    }

    @Test("the guest answers a body with the forbidden word itself with a 400; the upstream never sees it")
    func forbiddenWord() async throws {
        try await self.withGateway { gateway, upstream in
            let before = upstream.requests.count
            let response = try await Curl.request(
                "http://127.0.0.1:\(gateway.port("http"))/body/x",
                ["--data-binary", #"{"text":"a forbidden thing"}"#]
            )
            #expect(response.status == 400)
            #expect(response.header("content-type") == "application/json")
            #expect(response.bodyText == #"{"error":"the body holds a forbidden word"}"#)
            #expect(upstream.requests.count == before)
        }
    }

    @Test("a chunked body with a trailer is held: the guest reads the trailer; a pipelined request after it is served")
    func chunkedTrailerAndPipelining() async throws {
        try await self.withGateway { gateway, upstream in
            let raw = try RawConnection(port: gateway.port("http"))
            let first = String(Self.json.prefix(20))
            let rest = String(Self.json.dropFirst(20))
            #expect(
                raw.send(
                    "POST /body/chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + "\(String(first.utf8.count, radix: 16))\r\n\(first)\r\n"
                )
            )
            // The rest, its trailer and a pipelined GET arrive together, after a pause.
            try await Task.sleep(for: .milliseconds(100))
            #expect(
                raw.send(
                    "\(String(rest.utf8.count, radix: 16))\r\n\(rest)\r\n0\r\nX-Checksum: abc123\r\n\r\n"
                        + "GET /plain/next HTTP/1.1\r\nHost: a\r\n\r\n"
                )
            )
            let answer = await raw.read(until: "GET 0 ", timeout: 10)
            let expected = "POST \(Self.redacted.utf8.count) \(Self.redacted)"
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
            #expect(answer.contains(expected), "\(answer)")
            #expect(answer.components(separatedBy: "HTTP/1.1 200").count == 3, "\(answer)")
            let requests = upstream.requests
            let held = try #require(requests.first { $0.uri == "/body/chunked" })
            #expect(held.header("transfer-encoding") == nil)
            #expect(held.header("content-length") == String(Self.redacted.utf8.count))
            #expect(held.header("x-trailer-checksum") == "abc123")
            #expect(held.header("x-checksum") == nil)
            #expect(requests.last?.uri == "/plain/next")
        }
    }

    @Test("a body over the guest's limit is a 413: by its Content-Length at once, chunked as it arrives")
    func overLimit() async throws {
        try await self.withGateway { gateway, upstream in
            let before = upstream.requests.count
            let big = String(repeating: "x", count: 150_000)
            let scratch = try TemporaryDirectory(prefix: "wasm-body")
            defer { scratch.remove() }
            try scratch.write(big, to: "big.txt")
            let file = scratch.url.appendingPathComponent("big.txt").path
            let sized = try await Curl.request(
                "http://127.0.0.1:\(gateway.port("http"))/body/x",
                ["--data-binary", "@\(file)"]
            )
            #expect(sized.status == 413)
            #expect(sized.header("content-type") == "application/problem+json")
            #expect(sized.bodyText.contains("100000 bytes"))
            let chunked = try await Curl.request(
                "http://127.0.0.1:\(gateway.port("http"))/body/x",
                ["--data-binary", "@\(file)", "-H", "Transfer-Encoding: chunked"]
            )
            #expect(chunked.status == 413)
            #expect(chunked.header("connection") == "close")
            let overHTTP2 = try await Curl.request(
                "https://127.0.0.1:\(gateway.port("https"))/body/x",
                ["--http2", "--data-binary", "@\(file)"]
            )
            #expect(overHTTP2.status == 413 && overHTTP2.httpVersion == "2")
            #expect(upstream.requests.count == before)
            // The route still serves a body within the limit.
            let small = try await Curl.request(
                "http://127.0.0.1:\(gateway.port("http"))/body/x",
                ["--data-binary", Self.json]
            )
            #expect(small.status == 200)
        }
    }

    @Test("a client that expects 100-continue gets it once the guest waits for the body")
    func expectContinue() async throws {
        try await self.withGateway { gateway, upstream in
            let started = Date()
            let response = try await Curl.request(
                "http://127.0.0.1:\(gateway.port("http"))/body/x",
                ["--http1.1", "-H", "Expect: 100-continue", "--expect100-timeout", "60", "--data-binary", Self.json]
            )
            #expect(response.status == 200)
            #expect(response.bodyText == "POST \(Self.redacted.utf8.count) \(Self.redacted)")
            // Without the interim 100, curl would wait its 60 s before sending the body.
            #expect(Date().timeIntervalSince(started) < 30)
        }
    }

    @Test("a held body that stops arriving is answered with a 408 after the idle timeout")
    func stalledBody() async throws {
        try await self.withGateway(idleTimeoutSeconds: 1) { gateway, upstream in
            let raw = try RawConnection(port: gateway.port("http"))
            #expect(raw.send("POST /body/x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789"))
            let started = Date()
            let (answer, closed) = await raw.readUntilClosed(timeout: 30)
            #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
            #expect(answer.contains("the request body stopped arriving"), "\(answer)")
            // The 1 s idle timeout answered, not the 60 s default; loose because CI runs loaded.
            #expect(Date().timeIntervalSince(started) < 20)
            #expect(closed)
            #expect(upstream.requests.isEmpty)
        }
    }

    @Test(
        "handle_response gets is_error 1 for the gateway's 502 and 504 of a failed upstream, 0 otherwise, held or not"
    )
    func isError() async throws {
        try await self.withGateway { gateway, _ in
            let down = try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/down")
            #expect(down.status == 502)
            #expect(down.header("content-type") == "application/problem+json")
            #expect(down.header("x-wasm-is-error") == "1")
            let up = try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/meta")
            #expect(up.status == 200)
            #expect(up.header("x-wasm-is-error") == "0")
            let late = try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/late")
            #expect(late.status == 504 && late.header("x-wasm-is-error") == "1")
            // The same without holding the response: handle_response sees the head alone.
            let streamedDown = try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/streamed/down")
            #expect(streamedDown.status == 502 && streamedDown.header("x-wasm-is-error") == "1")
            let streamedUp = try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/streamed")
            #expect(streamedUp.status == 200 && streamedUp.header("x-wasm-is-error") == "0")
            #expect(up.header("x-wasm-backend-trailers") == "0")
            // enable_features(buffer_request) during a request is not granted: the body streams.
            #expect(up.header("x-wasm-late-buffer-request") == "0")
            let posted = try await Curl.request(
                "http://127.0.0.1:\(gateway.port("http"))/meta",
                ["--data-binary", Self.json]
            )
            #expect(posted.status == 200 && posted.bodyText == "POST \(Self.json.utf8.count) \(Self.json)")
        }
    }

    @Test(
        "a response trailer the guest adds is dropped on HTTP/1.1 (the held response has a Content-Length) and sent on HTTP/2"
    )
    func responseTrailers() async throws {
        try await self.withGateway { gateway, _ in
            let raw = try RawConnection(port: gateway.port("http"))
            #expect(raw.send("GET /meta HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
            let (answer, _) = await raw.readUntilClosed(timeout: 10)
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
            #expect(answer.lowercased().contains("content-length: "), "\(answer)")
            #expect(!answer.lowercased().contains("x-wasm-trailer"), "\(answer)")
            // nghttp (nghttp2's client) prints every frame, trailers included, where curl shows none.
            let h2 = try await ProcessRunner.run(
                "nghttp",
                ["-v", "https://127.0.0.1:\(gateway.port("https"))/meta"],
                timeout: 20
            )
            #expect(h2.exitCode == 0, "\(h2.standardError)")
            let frames = h2.standardOutput
            #expect(frames.contains("x-wasm-is-error: 0"), "\(frames)")
            let trailer = try #require(frames.range(of: "x-wasm-trailer: done"), "\(frames)")
            // It comes in a HEADERS frame after the response's own headers, the one that ends the stream.
            #expect(frames[trailer.upperBound...].contains("END_STREAM"), "\(frames)")
            #expect(frames[..<trailer.lowerBound].contains("x-wasm-backend-trailers: 0"), "\(frames)")
        }
    }
}
