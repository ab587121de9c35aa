import NIOCore
import NIOHTTP1

/// A request head for an upstream, already written out as HTTP/1.1 bytes, with how the body
/// that follows it is framed.
///
/// ``UpstreamRequestEncoder`` sends these bytes as they are, so the proxy writes the head once
/// (``ForwardedHeaders/serializedUpstreamHead(for:upstream:preserveHost:trustedProxies:upgrade:allocator:)``)
/// instead of building an `HTTPHeaders` of `String`s that NIO's `HTTPRequestEncoder` then
/// writes out again.
struct UpstreamRequestHead {
    /// How the body after the head is delimited on the wire.
    enum BodyFraming: Equatable {
        /// The head carries `Content-Length`: body bytes go out as they are.
        case contentLength
        /// The head carries `Transfer-Encoding: chunked`: each body part goes out as a chunk.
        case chunked
        /// Neither: the request has no body.
        case neither
    }

    /// The request's method: the response decoder needs it to frame the response (`HEAD`).
    let method: HTTPMethod
    /// The request line, the fields and the empty line that ends the head.
    let bytes: ByteBuffer
    let framing: BodyFraming

    /// Whether a request of `method` is expected to carry a body when it has no length field,
    /// by NIO's rule (`HTTPMethod.hasRequestBody`, internal to NIO): `POST`, `PUT` and `PATCH`
    /// always (chunked when no `Content-Length` is given), `TRACE` never, the rest only with a
    /// `Content-Length`.
    enum BodyExpectation {
        case yes, no, unlikely
    }

    static func bodyExpectation(of method: HTTPMethod) -> BodyExpectation {
        switch method {
        case .TRACE: return .no
        case .POST, .PUT, .PATCH: return .yes
        default: return .unlikely
        }
    }

    /// `head` written out with its framing fields corrected as NIO's `HTTPRequestEncoder` does
    /// (automatic framing on): the path for heads changed by `requestHeaders` rules, and for any
    /// head written without one staged.
    ///
    /// One correction on top of NIO's rule: when the client sent a body (`clientSentBody`) and
    /// the head would go up with no length field (a `GET` or `DELETE` with a chunked body, any
    /// `TRACE` with a body: NIO removes their framing), it goes up chunked. Unframed, the body's
    /// bytes would reach the upstream as the next request on the connection, past the
    /// gateway's routing and auth (request smuggling).
    init(encoding head: HTTPRequestHead, clientSentBody: Bool = false, allocator: ByteBufferAllocator) {
        var headers = head.headers
        var framing: BodyFraming
        let isHTTP11 = head.version.major == 1 && head.version.minor >= 1
        switch Self.bodyExpectation(of: head.method) {
        case .no:
            headers.remove(name: "content-length")
            headers.remove(name: "transfer-encoding")
            framing = .neither
        case .yes:
            if headers.contains(name: "content-length") {
                headers.remove(name: "transfer-encoding")
                framing = .contentLength
            } else if isHTTP11 {
                headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
                framing = .chunked
            } else {
                framing = .neither
            }
        case .unlikely:
            if headers.contains(name: "content-length") {
                headers.remove(name: "transfer-encoding")
                framing = .contentLength
            } else if isHTTP11 && headers["transfer-encoding"].first == "chunked" {
                framing = .chunked
            } else {
                framing = .neither
            }
        }
        if framing == .neither && clientSentBody {
            headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
            framing = .chunked
        }
        var buffer = allocator.buffer(capacity: 256)
        buffer.writeString(head.method.rawValue)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(head.uri)
        if head.version == .http1_1 {
            buffer.writeStaticString(" HTTP/1.1\r\n")
        } else {
            buffer.writeString(" HTTP/\(head.version.major).\(head.version.minor)\r\n")
        }
        for (name, value) in headers { buffer.writeField(name, value) }
        buffer.writeStaticString("\r\n")
        self.method = head.method
        self.bytes = buffer
        self.framing = framing
    }

    /// Whether the client's request carries a body by its HTTP/1.1 framing: `Transfer-Encoding`
    /// (the server's decoder accepts only a final `chunked`) or a `Content-Length` other than 0.
    static func clientSentBody(_ headers: HTTPHeaders) -> Bool {
        headers.contains(name: "transfer-encoding") || headers["content-length"].contains { $0 != "0" }
    }

    init(method: HTTPMethod, bytes: ByteBuffer, framing: BodyFraming) {
        self.method = method
        self.bytes = bytes
        self.framing = framing
    }
}

extension ByteBuffer {
    /// `name: value` and CRLF.
    @inline(__always)
    mutating func writeField(_ name: String, _ value: String) {
        self.writeString(name)
        self.writeStaticString(": ")
        self.writeString(value)
        self.writeStaticString("\r\n")
    }

    /// `name: value` and CRLF, for a name known at compile time.
    @inline(__always)
    mutating func writeField(_ name: StaticString, _ value: String) {
        self.writeStaticString(name)
        self.writeStaticString(": ")
        self.writeString(value)
        self.writeStaticString("\r\n")
    }
}
