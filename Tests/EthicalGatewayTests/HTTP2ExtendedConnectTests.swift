import NIOHPACK
import NIOHTTP1
import Testing

@testable import EthicalGateway

/// How the HTTP/2 layer reads a `CONNECT` (RFC 8441): the WebSocket opening rewritten into the
/// HTTP/1.1 form, every other `CONNECT` refused with what the client asked for.
@Suite("HTTP/2 extended CONNECT: classification")
struct HTTP2ExtendedConnectTests {
    static func fields(_ pairs: [(String, String)]) -> HPACKHeaders { HPACKHeaders(pairs) }

    @Test("an extended CONNECT for websocket becomes GET with Upgrade and Connection, other fields kept in order")
    func webSocket() throws {
        let fields = Self.fields([
            (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/chat?room=1"),
            (":authority", "example.com"), ("sec-websocket-version", "13"), ("sec-websocket-protocol", "a, b"),
        ])
        guard case .webSocket(let rewritten) = HTTP2ExtendedConnect.classify(fields) else {
            Issue.record("not classified as a WebSocket opening")
            return
        }
        #expect(rewritten[":method"] == ["GET"])
        #expect(rewritten[":protocol"].isEmpty)
        #expect(rewritten[":path"] == ["/chat?room=1"])
        #expect(rewritten[":authority"] == ["example.com"])
        #expect(rewritten["upgrade"] == ["websocket"])
        #expect(rewritten["connection"] == ["upgrade"])
        #expect(rewritten["sec-websocket-protocol"] == ["a, b"])
        // Pseudo-header fields still come first (RFC 9113 8.3).
        let names = rewritten.map(\.name)
        let firstRegular = try #require(names.firstIndex { !$0.hasPrefix(":") })
        #expect(names[firstRegular...].allSatisfy { !$0.hasPrefix(":") })
        // The token is compared case-insensitively, as an Upgrade token is.
        let upper = Self.fields([
            (":method", "CONNECT"), (":protocol", "WebSocket"), (":path", "/"), (":scheme", "https"),
        ])
        guard case .webSocket = HTTP2ExtendedConnect.classify(upper) else {
            Issue.record("WebSocket (capitalised) refused")
            return
        }
    }

    @Test("another :protocol and a plain CONNECT are refused with 501 naming what was asked; other methods pass")
    func refusals() {
        let other = Self.fields([
            (":method", "CONNECT"), (":protocol", "connect-udp"), (":scheme", "https"), (":path", "/"),
        ])
        guard case .refused(let status, let detail) = HTTP2ExtendedConnect.classify(other) else {
            Issue.record("connect-udp not refused")
            return
        }
        #expect(status == .notImplemented)
        #expect(detail.contains("\"connect-udp\""))
        guard
            case .refused(let plainStatus, let plainDetail) = HTTP2ExtendedConnect.classify(
                Self.fields([(":method", "CONNECT"), (":authority", "example.com:443")])
            )
        else {
            Issue.record("plain CONNECT not refused")
            return
        }
        #expect(plainStatus == .notImplemented)
        #expect(plainDetail.contains("not a forward proxy"))
        guard
            case .ordinary = HTTP2ExtendedConnect.classify(
                Self.fields([(":method", "GET"), (":path", "/"), (":scheme", "https")])
            )
        else {
            Issue.record("a GET was not left alone")
            return
        }
    }
}
