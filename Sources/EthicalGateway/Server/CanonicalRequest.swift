public import NIOHTTP1

/// What a request *is*, decided once by the codec: its framing checked, its one host, its
/// canonical path and query, and the head every later step sees. Routing, auth, filters and
/// the upstream all read this; nothing re-reads the raw target or the raw `Host` lines.
public struct CanonicalRequest: Sendable {
    /// Lower-cased host without port, for routing; `nil` for an HTTP/1.0 request without one.
    public var host: String?
    public var path: CanonicalPath
    public var query: Substring?
    /// The head with exactly one `Host` (the absolute-form authority when the target had one).
    public var head: HTTPRequestHead

    /// A request the gateway refuses before routing.
    public struct Refusal: Error, Sendable {
        public var status: HTTPResponseStatus
        public var detail: String
        /// The body's extent is in doubt (framing): answer, then close the connection.
        public var closeConnection: Bool
    }

    /// Checks and canonicalises `head`.
    public static func make(_ head: HTTPRequestHead, isHTTP2: Bool) -> Result<CanonicalRequest, Refusal> {
        if let refusal = Self.framingRefusal(head, isHTTP2: isHTTP2) { return .failure(refusal) }
        guard let target = RequestTarget.parse(head.uri) else {
            return .failure(
                Refusal(
                    status: .badRequest,
                    detail: "the request target must be a path such as /index.html or an absolute URI such as "
                        + "http://example.com/index.html",
                    closeConnection: false
                )
            )
        }
        var head = head
        var hostValues = head.headers["host"]
        if isHTTP2 && hostValues.count > 1 && hostValues.allSatisfy({ $0 == hostValues[0] }) {
            // :authority and a Host field naming the same thing (RFC 9113 8.3.1).
            hostValues = [hostValues[0]]
            head.headers.replaceOrAdd(name: "host", value: hostValues[0])
        }
        guard hostValues.count <= 1 else {
            return .failure(
                Refusal(
                    status: .badRequest,
                    detail: "the request carries \(hostValues.count) Host header fields; exactly one is allowed",
                    closeConnection: false
                )
            )
        }
        var hostValue = hostValues.first
        if let authority = target.authority {
            // RFC 9112 3.2.2: the target's authority wins over Host, for routing and forwarding alike.
            hostValue = String(authority)
            head.headers.replaceOrAdd(name: "host", value: hostValue!)
        }
        if let value = hostValue {
            guard isValidHostHeader(value) else {
                return .failure(
                    Refusal(
                        status: .badRequest,
                        detail: "the Host header must be host[:port]; found \(Self.excerpt(value))",
                        closeConnection: false
                    )
                )
            }
        } else if !isHTTP2 && head.version == .http1_1 {
            return .failure(
                Refusal(
                    status: .badRequest,
                    detail: "an HTTP/1.1 request must carry a Host header",
                    closeConnection: false
                )
            )
        }
        switch CanonicalPath.make(target.path) {
        case .failure(let refusal):
            return .failure(Refusal(status: .badRequest, detail: refusal.description, closeConnection: false))
        case .success(let path):
            return .success(
                CanonicalRequest(
                    host: hostValue.map(requestHost(fromHeaderValue:)),
                    path: path,
                    query: target.query,
                    head: head
                )
            )
        }
    }

    /// Message framing per RFC 9112 6: one `chunked` as the only transfer coding, one decimal
    /// `Content-Length`, never both. Anything else is how request smuggling starts.
    private static func framingRefusal(_ head: HTTPRequestHead, isHTTP2: Bool) -> Refusal? {
        let transferEncodings = head.headers["transfer-encoding"]
        let contentLengths = head.headers["content-length"]
        if !transferEncodings.isEmpty {
            // NIO's HTTP/2 codec refuses a client's Transfer-Encoding (RFC 9113 8.2.2) and adds
            // `chunked` itself to a request whose body has no content-length (its length is the
            // stream's END_STREAM, RFC 9113 8.1): that one is framing, not the client's field.
            let isCodecFraming =
                transferEncodings.count == 1 && transferEncodings[0] == "chunked" && contentLengths.isEmpty
            if isHTTP2 && !isCodecFraming {
                return Refusal(
                    status: .badRequest,
                    detail: "Transfer-Encoding is not allowed in HTTP/2 (RFC 9113 8.2.2)",
                    closeConnection: false
                )
            }
            if head.version.major == 1 && head.version.minor == 0 {
                return Refusal(
                    status: .badRequest,
                    detail: "Transfer-Encoding is not defined for HTTP/1.0 requests (RFC 9112 6.1)",
                    closeConnection: true
                )
            }
            guard transferEncodings.count == 1,
                Substring(transferEncodings[0]).trimmingASCIIWhitespace().lowercased() == "chunked"
            else {
                return Refusal(
                    status: .notImplemented,
                    detail: "the only transfer coding accepted is a single \"chunked\"; found "
                        + Self.excerpt(transferEncodings.joined(separator: ", ")),
                    closeConnection: true
                )
            }
            if !contentLengths.isEmpty {
                return Refusal(
                    status: .badRequest,
                    detail: "a request must not carry both Transfer-Encoding and Content-Length (RFC 9112 6.1)",
                    closeConnection: true
                )
            }
        }
        if contentLengths.count > 1 {
            return Refusal(
                status: .badRequest,
                detail:
                    "the request carries \(contentLengths.count) Content-Length header fields; exactly one is allowed",
                closeConnection: true
            )
        }
        if let length = contentLengths.first,
            length.isEmpty || length.utf8.count > 18
                || !length.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        {
            return Refusal(
                status: .badRequest,
                detail: "Content-Length must be a decimal number of bytes; found \(Self.excerpt(length))",
                closeConnection: true
            )
        }
        return nil
    }

    /// A value quoted for an error message, cut to a length a client can read.
    static func excerpt(_ value: String) -> String {
        value.utf8.count <= 64 ? "\"\(value)\"" : "\"\(value.prefix(64))...\""
    }
}

extension Substring {
    /// The substring without leading and trailing spaces and tabs (HTTP's OWS).
    public func trimmingASCIIWhitespace() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" { result = result.dropLast() }
        return result
    }
}
