import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// Upstreams that answer wrongly: the client gets a clear 502 (or, once a response has started,
/// a cut connection, never a made-up end), nothing the upstream said out of turn reaches the
/// client, and the gateway keeps serving.
@Suite("Faults: malformed and broken upstream responses")
struct UpstreamFaultTests {
    static let cases: [(name: String, reply: String, close: Bool)] = [
        ("garbage status line", "HTTP/1.1 abc Nope\r\ncontent-length: 0\r\n\r\n", false),
        ("not HTTP at all", "SSH-2.0-OpenSSH_9.2\r\n\r\n", true),
        ("empty reply", "", true),
        ("header without colon", "HTTP/1.1 200 OK\r\nbroken header\r\ncontent-length: 2\r\n\r\nok", false),
        ("NUL in a header", "HTTP/1.1 200 OK\r\nx-a: a\u{0}b\r\ncontent-length: 2\r\n\r\nok", false),
        ("obs-fold", "HTTP/1.1 200 OK\r\nx-a: a\r\n b\r\ncontent-length: 2\r\n\r\nok", false),
        (
            "two different Content-Length",
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 40\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n", false
        ),
        (
            "Content-Length and Transfer-Encoding",
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", false
        ),
    ]

    static func config(_ upstream: any UpstreamAddress) -> String {
        plainConfig(
            routes: #"[ { "match": { "pathPrefix": "/ok" }, "backend": "ok" }, { "backend": "bad" } ]"#,
            backends: """
                { "ok": { "plugin": "respond", "config": { "body": "still here" } },
                  "bad": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "\(upstream.url)" } ],
                           "retries": { "attempts": 0 }, "timeouts": { "firstByteSeconds": 3, "idleSeconds": 3 } } } }
                """
        )
    }

    @Test("a malformed upstream response is a 502 problem document, and the gateway keeps serving")
    func malformedResponses() async throws {
        for fault in Self.cases {
            let upstream = try await ScriptedUpstream(reply: fault.reply, closeAfterReply: fault.close)
            try await LiveGateway.with(config: Self.config(upstream), registry: gatewayRegistry) { gateway in
                let base = "http://127.0.0.1:\(gateway.port("http"))"
                do {
                    let response = try await Curl.request(base + "/x")
                    #expect(response.status == 502, "\(fault.name): \(response.status) \(response.bodyText)")
                    #expect(response.header("content-type") == "application/problem+json", "\(fault.name)")
                    #expect(!response.bodyText.contains("okHTTP"), "\(fault.name)")
                } catch {
                    Issue.record("\(fault.name): \(error)")
                }
                let after = try await Curl.request(base + "/ok")
                #expect(after.bodyText == "still here", "\(fault.name)")
            }
            await upstream.stop()
        }
    }

    @Test("malformed responses do not eject the upstream, and the 502 says the response was invalid")
    func malformedResponsesDoNotEject() async throws {
        let upstream = try await ScriptedUpstream(
            reply: "HTTP/1.1 200 OK\r\nbroken header\r\ncontent-length: 2\r\n\r\nok",
            closeAfterReply: false
        )
        let silent = try await ScriptedUpstream(reply: "", closeAfterReply: true)
        // Ejection after 2 failures in a row, for long enough to outlast the test.
        let ejecting = #""outlierDetection": { "consecutiveFailures": 2, "baseEjectionSeconds": 60 }, "#
        for (target, detail) in [(upstream, "not valid HTTP/1.1"), (silent, "without a response")] {
            let config = Self.config(target).replacingOccurrences(of: #""retries":"#, with: ejecting + #""retries":"#)
            try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
                let url = "http://127.0.0.1:\(gateway.port("http"))/x"
                // Twice the ejection threshold: a malformed answer is not counted, and a
                // connection closed without an answer is, but the only upstream stays in use.
                for attempt in 1...4 {
                    let response = try await Curl.request(url)
                    #expect(response.status == 502, "\(detail) #\(attempt): \(response.status) \(response.bodyText)")
                    #expect(response.bodyText.contains(detail), "#\(attempt): \(response.bodyText)")
                }
            }
        }
        #expect(upstream.requests == 4)
        #expect(silent.requests == 4)
        await upstream.stop()
        await silent.stop()
    }

    /// Responses that break after their head: the head may already be on its way, so the
    /// only honest signal left is a cut connection (HTTP/1.1) or a reset stream (HTTP/2).
    static let brokenBodies: [(name: String, reply: String)] = [
        ("dies mid-body", "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + String(repeating: "x", count: 100)),
        ("bad chunk size", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nok\r\n0\r\n\r\n"),
        ("chunked body cut", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n"),
    ]

    @Test("an upstream response that breaks mid-body reaches the client cut, never as a complete one")
    func brokenMidBody() async throws {
        for broken in Self.brokenBodies {
            let upstream = try await ScriptedUpstream(reply: broken.reply, closeAfterReply: true)
            try await LiveGateway.with(config: Self.config(upstream), registry: gatewayRegistry) { gateway in
                let base = "http://127.0.0.1:\(gateway.port("http"))"
                for (scheme, flag) in [("http", "--http1.1")] {
                    await #expect(throws: CurlError.self, "\(broken.name) \(scheme)") {
                        _ = try await Curl.request(base + "/x", [flag])
                    }
                }
                let after = try await Curl.request(base + "/ok")
                #expect(after.bodyText == "still here", "\(broken.name)")
            }
            await upstream.stop()
        }
    }
}
