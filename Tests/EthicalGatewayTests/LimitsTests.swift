import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

@Suite("Limits against bad input and slow clients")
struct LimitsTests {
    static let config = """
        { "limits": { "maxHeaderBytes": 2048, "maxHeaderCount": 20, "maxURIBytes": 256, "maxBodyBytes": 1000,
                      "headerReadTimeoutSeconds": 2, "idleTimeoutSeconds": 8 },
          "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 },
                         { "name": "https", "address": "127.0.0.1", "port": 0, "tls": {} } ],
          "routes": [ { "backend": "ok" }, { "match": { "pathPrefix": "/big" }, "maxBodyBytes": 5000, "backend": "ok" },
                      { "match": { "path": "/slow" }, "backend": "slow" } ],
          "backends": { "ok": { "plugin": "respond", "config": { "body": "ok" } },
                        "slow": { "plugin": "test-slow", "config": { "delayMilliseconds": 3000, "body": "late" } } } }
        """

    func withGateway(_ body: (LiveGateway) async throws -> Void) async throws {
        try await LiveGateway.with(config: Self.config, registry: testRegistry, body)
    }

    @Test("an over-long request target gets 414")
    func uriTooLong() async throws {
        try await self.withGateway { gateway in
            for scheme in ["http", "https"] {
                let response = try await Curl.request(
                    "\(scheme)://127.0.0.1:\(gateway.port(scheme))/" + String(repeating: "a", count: 300),
                    ["-v"]
                )
                #expect(response.status == 414)
                #expect(response.header("content-type") == "application/problem+json")
            }
        }
    }

    @Test("too many or too large headers get 431, over HTTP/1.1 and HTTP/2")
    func headers() async throws {
        try await self.withGateway { gateway in
            let many = (0..<25).flatMap { ["-H", "X-Field-\($0): v"] }
            for (scheme, flag) in [("http", "--http1.1"), ("https", "--http2")] {
                let url = "\(scheme)://127.0.0.1:\(gateway.port(scheme))/"
                // -v: should curl fail, its error shows the whole exchange.
                let count = try await Curl.request(url, [flag, "-v"] + many)
                #expect(count.status == 431, "\(scheme) count")
                let size = try await Curl.request(
                    url,
                    [flag, "-v", "-H", "X-Big: " + String(repeating: "b", count: 2100)]
                )
                #expect(size.status == 431, "\(scheme) size")
            }
        }
    }

    @Test("a head far beyond the limits is cut off before it is buffered")
    func hugeHead() async throws {
        try await self.withGateway { gateway in
            let connection = try RawConnection(port: gateway.port("http"))
            connection.send("GET / HTTP/1.1\r\nHost: a\r\n")
            for _ in 0..<40 { connection.send("X-Filler: " + String(repeating: "f", count: 1000) + "\r\n") }
            // The gateway reads the rest of the head and closes once the client falls silent (2 s).
            let (text, closed) = await connection.readUntilClosed(timeout: 10)
            #expect(text.hasPrefix("HTTP/1.1 431"))
            #expect(closed)
        }
    }

    @Test("bodies above the route's limit get 413, announced or streamed")
    func bodyTooLarge() async throws {
        try await self.withGateway { gateway in
            let url = "http://127.0.0.1:\(gateway.port("http"))"
            let small = try await Curl.request(url + "/", ["--data-binary", String(repeating: "x", count: 900)])
            #expect(small.status == 200)
            let announced = try await Curl.request(url + "/", ["--data-binary", String(repeating: "x", count: 1200)])
            #expect(announced.status == 413)
            let routeLimit = try await Curl.request(
                url + "/big",
                ["--data-binary", String(repeating: "x", count: 4000)]
            )
            #expect(routeLimit.status == 200)
            let chunked = try RawConnection(port: gateway.port("http"))
            // The slow backend has not answered yet when the body crosses the limit.
            chunked.send("POST /slow HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunked.send("3e8\r\n" + String(repeating: "y", count: 1000) + "\r\n")
            chunked.send("3e8\r\n" + String(repeating: "y", count: 1000) + "\r\n")
            let (text, closed) = await chunked.readUntilClosed(timeout: 10)
            #expect(text.hasPrefix("HTTP/1.1 413"))
            #expect(text.lowercased().contains("connection: close"))
            #expect(closed)
        }
    }

    @Test("a refused upload can be sent to its end: the client reads the 413 and a clean close, not a reset")
    func refusedUploadLingers() async throws {
        try await self.withGateway { gateway in
            let connection = try RawConnection(port: gateway.port("http"))
            #expect(connection.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4000000\r\n\r\n"))
            // The 413 comes at once; like a browser (no Expect: 100-continue) the client keeps
            // sending. Were the connection closed with these bytes unread, the kernel would
            // answer them with a reset and the sends would fail.
            let chunk = String(repeating: "z", count: 40_000)
            var sent = 0
            for _ in 0..<100 where connection.send(chunk) { sent += chunk.utf8.count }
            #expect(sent == 4_000_000, "the upload was cut after \(sent) bytes")
            let (text, closed) = await connection.readUntilClosed(timeout: 10)
            #expect(text.hasPrefix("HTTP/1.1 413"))
            #expect(closed, "closed once the client fell silent")
        }
    }

    @Test("Expect: 100-continue gets an interim 100 once the route accepts the body; other expectations 417")
    func expectContinue() async throws {
        try await self.withGateway { gateway in
            let connection = try RawConnection(port: gateway.port("http"))
            connection.send("POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            #expect(await connection.read(until: "\r\n\r\n", timeout: 5).hasPrefix("HTTP/1.1 100 Continue"))
            connection.send("hello")
            #expect(await connection.read(until: "late", timeout: 10).contains("HTTP/1.1 200 OK"))
            // Too large: refused before the client sends the body, no 100.
            let large = try RawConnection(port: gateway.port("http"))
            large.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
            #expect(await large.read(until: "\r\n\r\n", timeout: 5).hasPrefix("HTTP/1.1 413"))
            let odd = try await Curl.request(
                "http://127.0.0.1:\(gateway.port("http"))/",
                ["-H", "Expect: something-else"]
            )
            #expect(odd.status == 417)
            // curl waits for the 100 before sending the upload (for up to a second otherwise): it must
            // see one while the (slow) backend has not answered yet.
            let upload = try await ProcessRunner.run(
                "curl",
                [
                    "-sv", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary",
                    String(repeating: "u", count: 900),
                    "-H", "Expect: 100-continue", "http://127.0.0.1:\(gateway.port("http"))/slow",
                ]
            )
            #expect(upload.standardOutput == "200")
            #expect(upload.standardError.contains("< HTTP/1.1 100 Continue"))
        }
    }

    @Test("a client too slow to send its head gets 408 and is disconnected")
    func headerTimeout() async throws {
        try await self.withGateway { gateway in
            let connection = try RawConnection(port: gateway.port("http"))
            connection.send("GET / HTTP/1.1\r\nHost: a\r\n")
            let (text, closed) = await connection.readUntilClosed(timeout: 5)
            #expect(text.hasPrefix("HTTP/1.1 408"))
            #expect(closed)
            // A TLS client that never says hello is disconnected too.
            let silent = try RawConnection(port: gateway.port("https"))
            let (_, silentClosed) = await silent.readUntilClosed(timeout: 5)
            #expect(silentClosed)
        }
    }

    /// The head guard keeps one timer per connection: armed for the first head, it fires while a
    /// later head is under way and must time that head from its own first byte. The idle timeout
    /// is long here, so a machine too busy to wake the test in time cannot close the connection
    /// as idle before the second head is sent.
    @Test("a later head on a keep-alive connection is timed from its own first byte")
    func headerTimeoutOfLaterHead() async throws {
        let config = Self.config.replacingOccurrences(
            of: #""idleTimeoutSeconds": 8"#,
            with: #""idleTimeoutSeconds": 120"#
        )
        #expect(config != Self.config)
        try await LiveGateway.with(config: config, registry: testRegistry) { gateway in
            let connection = try RawConnection(port: gateway.port("http"))
            let started = Date()
            connection.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(await connection.read(until: "ok", timeout: 5).hasPrefix("HTTP/1.1 200"))
            try await Task.sleep(for: .milliseconds(1200))
            let secondHead = Date()
            connection.send("GET / HTTP/1.1\r\nHost: a\r\n")
            let (text, closed) = await connection.readUntilClosed(timeout: 6)
            #expect(text.hasPrefix("HTTP/1.1 408"))
            #expect(closed)
            // Timed from the second head (2 s, up to 10% less), not from the first one.
            #expect(Date().timeIntervalSince(secondHead) >= 1.75, "cut after \(Date().timeIntervalSince(started)) s")
        }
    }

    @Test("malformed HTTP gets 400 and the connection is closed; the gateway keeps serving")
    func malformed() async throws {
        try await self.withGateway { gateway in
            for garbage in [
                "GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nHost a\r\n\r\n",
                "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\nHost: a\r\n\r\n",
            ] {
                let connection = try RawConnection(port: gateway.port("http"))
                connection.send(garbage)
                let (text, closed) = await connection.readUntilClosed(timeout: 5)
                #expect(text.hasPrefix("HTTP/1.1 400"), "\(garbage.debugDescription) -> \(text.prefix(40))")
                #expect(closed)
            }
            let missingHost = try RawConnection(port: gateway.port("http"))
            missingHost.send("GET / HTTP/1.1\r\n\r\n")
            #expect(await missingHost.read(until: "}", timeout: 5).hasPrefix("HTTP/1.1 400"))
            let healthy = try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/")
            #expect(healthy.status == 200)
        }
    }
}
