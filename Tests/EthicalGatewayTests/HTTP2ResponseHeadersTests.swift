import NIOHPACK
import NIOHTTP1
import Testing

@testable import EthicalGateway

/// The gateway's HTTP/2 response header block against the one NIO's codec makes from the same
/// head: the same fields in the same order, with per-response fields not indexed.
@Suite("HTTP/2 response header blocks")
struct HTTP2ResponseHeadersTests {
    static let heads: [HTTPResponseHead] = [
        HTTPResponseHead(version: .http2, status: .ok),
        HTTPResponseHead(
            version: .http2,
            status: .notFound,
            headers: ["Content-Type": "application/problem+json", "content-length": "12", "X-Request-ID": "abc"]
        ),
        HTTPResponseHead(
            version: .http2,
            status: .init(statusCode: 299, reasonPhrase: "Custom"),
            headers: [
                "connection": "keep-alive, X-Hop", "keep-alive": "timeout=5", "x-hop": "1",
                "Transfer-Encoding": "chunked",
                "Upgrade": "h2c", "proxy-connection": "x", "Set-Cookie": "a=1", "set-cookie": "b=2", "ETag": "\"e\"",
                "Date": "Mon, 30 Nov 2026 10:00:00 GMT", "strict-transport-security": "max-age=63072000",
                "X-Mixed": "V",
            ]
        ),
    ]

    @Test("the same fields and order as NIO's HPACKHeaders(httpHeaders:normalizeHTTPHeaders:)")
    func sameAsNIO() {
        for head in Self.heads {
            var h1 = HTTPHeaders([(":status", String(head.status.code))])
            h1.add(contentsOf: head.headers)
            let expected = HPACKHeaders(httpHeaders: h1, normalizeHTTPHeaders: true).map { [$0.name, $0.value] }
            let block = HTTP2ResponseHeaders.make(head)
            #expect(block.map { [$0.name, $0.value] } == expected, "\(head)")
        }
    }

    @Test("a 204 or 1xx goes without Content-Length (RFC 9110 8.6); a 304 keeps it")
    func bodilessStatuses() {
        for (code, kept) in [(204, false), (103, false), (304, true), (200, true)] {
            let head = HTTPResponseHead(
                version: .http2,
                status: .init(statusCode: code),
                headers: ["Content-Length": "5", "x-a": "1"]
            )
            let block = HTTP2ResponseHeaders.make(head)
            #expect(block.contains(name: "content-length") == kept, "\(code)")
            #expect(block.contains(name: "x-a"), "\(code)")
        }
    }

    @Test("per-response fields are literals without indexing, cookies never indexed, the rest indexable")
    func indexing() {
        let block = HTTP2ResponseHeaders.make(Self.heads[2])
        var indexing: [String: HPACKIndexing] = [:]
        for field in block { indexing[field.name] = field.indexable }
        #expect(indexing["etag"] == .nonIndexable)
        #expect(indexing["date"] == .nonIndexable)
        #expect(indexing["set-cookie"] == .neverIndexed)
        #expect(indexing["strict-transport-security"] == .indexable)
        #expect(indexing["x-mixed"] == .indexable)
        #expect(indexing[":status"] == .indexable)
        let other = HTTP2ResponseHeaders.make(Self.heads[1])
        #expect(other.first { $0.name == "x-request-id" }?.indexable == .nonIndexable)
        #expect(other.first { $0.name == "content-length" }?.indexable == .nonIndexable)
    }
}
