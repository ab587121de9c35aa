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
        if case .RAW(let method) = head.method, let refusal = Self.methodRefusal(method) { return .failure(refusal) }
        if let refusal = Self.framingRefusal(head, isHTTP2: isHTTP2) { return .failure(refusal) }
        if isHTTP2, let first = head.uri.utf8.first, first != UInt8(ascii: "/"), head.uri != "*" {
            // RFC 9113 8.3.1: `:path` is a path and query; the host is `:authority`'s. An
            // absolute URI there would otherwise win over `:authority`, as it does over Host in
            // HTTP/1.1, and route the request by a host the client's `:authority` never named.
            return .failure(
                Refusal(
                    status: .badRequest,
                    detail: "an HTTP/2 request's :path must start with / (the host goes in :authority)",
                    closeConnection: false
                )
            )
        }
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
        if !isHTTP2 { Self.removeConnectionOptions(&head.headers) }
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

    /// Removes the fields a client's `Connection` header names as its connection options (RFC
    /// 9110 7.6.1), and those names from `Connection`, as the request arrives: before filters
    /// and auth add fields of their own. Left to the proxy, `Connection: X-User` removed the
    /// `X-User` claim header the gateway had set from the verified token (and a `headers`
    /// filter's fields). `close`, `keep-alive` and `upgrade` stay (they are the connection's
    /// own options); `Host`, `Content-Length` and `Transfer-Encoding` are never connection
    /// options, so naming them removes nothing (`Connection: content-length` made the proxy send
    /// a body without its length).
    static func removeConnectionOptions(_ headers: inout HTTPHeaders) {
        let values = headers["connection"]
        guard !values.isEmpty else { return }
        // The common values name no other field.
        if values.count == 1, Self.isConnectionOwnOption(Substring(values[0])) { return }
        var kept: [Substring] = []
        var named: [Substring] = []
        for value in values {
            for token in value.split(separator: ",") {
                let token = token.trimmingASCIIWhitespace()
                guard !token.isEmpty else { continue }
                if Self.isConnectionOwnOption(token) {
                    kept.append(token)
                } else {
                    named.append(token)
                }
            }
        }
        guard !named.isEmpty else { return }
        for name in named {
            switch name.lowercased() {
            case "host", "content-length", "transfer-encoding": continue
            default: headers.remove(name: String(name))
            }
        }
        if kept.isEmpty {
            headers.remove(name: "connection")
        } else {
            headers.replaceOrAdd(name: "connection", value: kept.joined(separator: ", "))
        }
    }

    /// `close`, `keep-alive` or `upgrade`, in any case (compared on the bytes: this runs for
    /// most HTTP/1.1 requests).
    private static func isConnectionOwnOption(_ token: Substring) -> Bool {
        func equals(_ expected: StaticString) -> Bool {
            guard token.utf8.count == expected.utf8CodeUnitCount else { return false }
            return zip(token.utf8, UnsafeBufferPointer(start: expected.utf8Start, count: expected.utf8CodeUnitCount))
                .allSatisfy { byte, lower in (byte | 0x20) == lower }
        }
        return equals("keep-alive") || equals("close") || equals("upgrade")
    }

    /// A method NIO does not know (`HTTPMethod.RAW`) that is not a token of upper-case letters,
    /// digits and token punctuation. Methods are case-sensitive (RFC 9110 9.1), so `delete` is
    /// not `DELETE` to a route that matches methods, while upstreams that upper-case the method
    /// (Werkzeug, and others) run it as a `DELETE`: a route's auth could be walked around.
    /// nginx answers such methods 400 as well; over HTTP/2 this also refuses a `:method` that is
    /// not a token at all.
    private static func methodRefusal(_ method: String) -> Refusal? {
        // A token (the shared tchar check) without lower-case letters.
        let acceptable =
            FieldBytes.isToken(method)
            && !method.utf8.contains { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }
        guard !acceptable else { return nil }
        return Refusal(
            status: .badRequest,
            detail: "the method \(Self.excerpt(method)) is not a token of upper-case letters; methods are "
                + "case-sensitive (RFC 9110 9.1), so it is not the method its upper-case spelling names",
            closeConnection: false
        )
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
