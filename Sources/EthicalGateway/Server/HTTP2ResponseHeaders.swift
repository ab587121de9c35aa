import NIOHPACK
import NIOHTTP1

/// An HTTP/2 response's header block from the gateway's HTTP/1-style response head: what NIO's
/// `HTTP2FramePayloadToHTTP1ServerCodec` makes (`:status` first, names lower-cased, the
/// connection-specific fields of RFC 9113 8.2.2 and any field `Connection` names left out),
/// with `Content-Length` left out of a 1xx or 204 (NIO passed it on), and one difference more: fields whose values change from one response to the next are sent
/// without indexing.
///
/// NIO's HPACK encoder adds every indexable field to the connection's dynamic table. A
/// different `X-Request-ID` on every response, and a different `Content-Length` on most, filled
/// the table with entries never used again, evicting the ones that repeat; each field of each
/// response was then compared against fifty-odd entries (callgrind: 30,000 instructions per
/// response, 9% of an authenticated HTTP/2 request). nginx and HAProxy index no response field
/// at all; the gateway keeps indexing the fields that repeat (`content-type`,
/// `strict-transport-security`, ...), which is where HPACK saves bytes.
enum HTTP2ResponseHeaders {
    /// Fields sent as literals without indexing: their values rarely repeat.
    static let changing: Set<String> = [
        "x-request-id", "content-length", "date", "etag", "last-modified", "age", "expires",
        "content-range", "traceparent", "tracestate",
    ]
    /// Fields never indexed, here or by any intermediary (RFC 7541 7.1.3): secrets an attacker
    /// on the same connection could otherwise guess from the block's size.
    static let sensitive: Set<String> = ["set-cookie", "authorization", "proxy-authorization"]
    /// Connection-specific fields, not allowed in HTTP/2 (RFC 9113 8.2.2; NIO's list).
    static let connectionSpecific: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
    ]

    static func make(_ head: HTTPResponseHead) -> HPACKHeaders {
        var block = HPACKHeaders()
        block.reserveCapacity(head.headers.count + 1)
        block.add(name: ":status", value: String(head.status.code))
        let named = head.headers.contains(name: "connection") ? head.headers[canonicalForm: "connection"] : []
        // A 1xx or 204 has no content (RFC 9110 8.6): clients treat a Content-Length on it as
        // a malformed response (curl: PROTOCOL_ERROR). The HTTP/1.1 encoder drops it too.
        let bodiless = head.status.code < 200 || head.status.code == 204
        for (name, value) in head.headers {
            let lowered = Self.lowercased(name)
            if Self.connectionSpecific.contains(lowered) || named.contains(where: { $0 == lowered[...] }) { continue }
            if bodiless && lowered == "content-length" { continue }
            let indexing: HPACKIndexing =
                Self.changing.contains(lowered)
                ? .nonIndexable : Self.sensitive.contains(lowered) ? .neverIndexed : .indexable
            block.add(name: lowered, value: value, indexing: indexing)
        }
        return block
    }

    /// `name` in lower case, without a copy when it already is (the gateway's own fields, and
    /// most upstreams').
    private static func lowercased(_ name: String) -> String {
        name.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) ? name.lowercased() : name
    }
}
