import EthicalGateway
import NIOCore
import NIOHTTP1

extension ForwardedHeaders {
    /// The head sent to `upstream` for `request`, as bytes: written at once, or through
    /// `HTTPHeaders` only when the backend's `requestHeaders` `rules` rewrite it.
    static func upstreamRequestHead(
        for request: GatewayRequest,
        upstream: Upstream,
        preserveHost: Bool,
        trustedProxies: TrustedProxies,
        rules: HeaderRewriter,
        upgrade: String? = nil,
        attemptSpan: RequestSpan? = nil,
        allocator: ByteBufferAllocator
    ) -> UpstreamRequestHead {
        guard !rules.isEmpty else {
            return Self.serializedUpstreamHead(
                for: request,
                upstream: upstream,
                preserveHost: preserveHost,
                trustedProxies: trustedProxies,
                upgrade: upgrade,
                attemptSpan: attemptSpan,
                allocator: allocator
            )
        }
        var head = Self.upstreamHead(
            for: request,
            upstream: upstream,
            preserveHost: preserveHost,
            trustedProxies: trustedProxies,
            upgrade: upgrade,
            attemptSpan: attemptSpan
        )
        rules.apply(to: &head.headers)
        return UpstreamRequestHead(
            encoding: head,
            clientSentBody: UpstreamRequestHead.clientSentBody(request.head.headers),
            allocator: allocator
        )
    }

    /// The head ``upstreamHead(for:upstream:preserveHost:trustedProxies:upgrade:)`` builds,
    /// written straight into bytes as NIO's `HTTPRequestEncoder` would write it (same fields,
    /// same order, same framing fields, but for a body NIO would send unframed: see
    /// ``UpstreamRequestHead/init(encoding:clientSentBody:allocator:)``): the client's fields are copied as they pass the rules,
    /// and the gateway's own values (`X-Forwarded-*`, `Forwarded`, `X-Request-ID`,
    /// `traceparent`) are written piece by piece, with no `HTTPHeaders` and no joined `String`s
    /// in between.
    ///
    /// For a backend without `requestHeaders` rules; with rules, the head is built as
    /// `HTTPHeaders`, rewritten, then written by ``UpstreamRequestHead/init(encoding:allocator:)``.
    static func serializedUpstreamHead(
        for request: GatewayRequest,
        upstream: Upstream,
        preserveHost: Bool,
        trustedProxies: TrustedProxies,
        upgrade: String? = nil,
        attemptSpan: RequestSpan? = nil,
        allocator: ByteBufferAllocator
    ) -> UpstreamRequestHead {
        let head = request.head
        let incoming = head.headers
        let tokens = Self.connectionTokens(incoming)
        let trusted = trustedProxies.contains(request.remoteAddress)
        let expectation = UpstreamRequestHead.bodyExpectation(of: head.method)
        var buffer = allocator.buffer(capacity: 512 + 64 * incoming.count)
        buffer.writeString(head.method.rawValue)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(head.uri)
        buffer.writeStaticString(" HTTP/1.1\r\n")

        var clientHost: String?
        var forwardedFor: [String] = []
        var forwarded: [String] = []
        var forwardedProto: String?
        var forwardedHost: String?
        var hasContentLength = false
        // A body NIO's framing rule would send unframed (see UpstreamRequestHead.init(encoding:)).
        var clientSentBody = false
        for (name, value) in incoming {
            if Self.isHopByHop(name, connectionTokens: tokens) {
                if name.utf8.count == 17 && asciiCaseInsensitiveEquals(name, "transfer-encoding") {
                    clientSentBody = true
                }
                continue
            }
            switch Self.role(ofRequestField: name) {
            case .host:
                clientHost = value
                if !preserveHost { continue }
            case .expect, .requestID, .traceparent, .tracestate:
                continue
            case .forwarded:
                if trusted { forwarded.append(value) }
                continue
            case .xForwardedFor:
                if trusted { forwardedFor.append(value) }
                continue
            case .xForwardedHost:
                if trusted { forwardedHost = value }
                continue
            case .xForwardedProto:
                if trusted { forwardedProto = value }
                continue
            case .contentLength:
                // A TRACE carries no body by NIO's rule, which drops its length fields.
                if expectation == .no {
                    if value != "0" { clientSentBody = true }
                    continue
                }
                hasContentLength = true
            case .other:
                break
            }
            buffer.writeField(name, value)
        }

        if !preserveHost || clientHost == nil {
            buffer.writeField("host", upstream.hostHeader)
        }
        // An IPv4 client's address is written from its four bytes; `ipAddress` (inet_ntop and a
        // String) cost 2,900 instructions per request.
        let ipv4: SocketAddress.IPv4Address?
        let clientIP: String
        if case .v4(let address) = request.remoteAddress {
            ipv4 = address
            clientIP = ""
        } else {
            ipv4 = nil
            clientIP = request.remoteAddress?.ipAddress ?? "unknown"
        }
        buffer.writeStaticString("x-forwarded-for: ")
        for value in forwardedFor {
            buffer.writeString(value)
            buffer.writeStaticString(", ")
        }
        if let ipv4 { buffer.writeDottedQuad(ipv4) } else { buffer.writeString(clientIP) }
        buffer.writeStaticString("\r\n")
        buffer.writeField("x-forwarded-proto", forwardedProto ?? request.scheme)
        if let host = forwardedHost ?? clientHost { buffer.writeField("x-forwarded-host", host) }
        buffer.writeStaticString("forwarded: ")
        for value in forwarded {
            buffer.writeString(value)
            buffer.writeStaticString(", ")
        }
        buffer.writeStaticString("for=")
        if let ipv4 { buffer.writeDottedQuad(ipv4) } else { buffer.writeForwardedNode(clientIP) }
        buffer.writeStaticString(";proto=")
        buffer.writeString(request.scheme)
        if let clientHost {
            buffer.writeStaticString(";host=")
            buffer.writeTokenOrQuoted(clientHost)
        }
        buffer.writeStaticString("\r\n")
        buffer.writeField("x-request-id", request.requestID)
        // The upstream's parent is the gateway's span (the attempt's span when spans are exported).
        if let trace = attemptSpan?.trace ?? request.trace {
            buffer.writeStaticString("traceparent: ")
            trace.writeTraceparent(into: &buffer)
            buffer.writeStaticString("\r\n")
            if let state = trace.traceState { buffer.writeField("tracestate", state) }
        }
        if let upgrade {
            buffer.writeStaticString("connection: upgrade\r\n")
            buffer.writeField("upgrade", upgrade)
        }
        // Framing as NIO's encoder sets it (Transfer-Encoding, hop-by-hop, never comes through),
        // and chunked for a body it would have sent unframed.
        let framing: UpstreamRequestHead.BodyFraming
        if hasContentLength {
            framing = .contentLength
        } else if expectation == .yes || clientSentBody {
            buffer.writeStaticString("transfer-encoding: chunked\r\n")
            framing = .chunked
        } else {
            framing = .neither
        }
        buffer.writeStaticString("\r\n")
        return UpstreamRequestHead(method: head.method, bytes: buffer, framing: framing)
    }
}

extension ByteBuffer {
    /// An IPv4 address in dotted-decimal form, as `SocketAddress.ipAddress` writes it: built
    /// on the stack and written at once (a `writeInteger` per digit cost 800 instructions).
    fileprivate mutating func writeDottedQuad(_ address: SocketAddress.IPv4Address) {
        withUnsafeBytes(of: address.address.sin_addr) { octets in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 15) { text in
                var count = 0
                for (index, octet) in octets.enumerated() {
                    if index > 0 {
                        text[count] = UInt8(ascii: ".")
                        count += 1
                    }
                    if octet >= 100 {
                        text[count] = UInt8(ascii: "0") + octet / 100
                        count += 1
                    }
                    if octet >= 10 {
                        text[count] = UInt8(ascii: "0") + octet / 10 % 10
                        count += 1
                    }
                    text[count] = UInt8(ascii: "0") + octet % 10
                    count += 1
                }
                self.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(text)[..<count]))
            }
        }
    }

    /// An RFC 7239 node: IPv6 addresses bracketed and quoted (``ForwardedHeaders/forwardedNode(_:)``).
    fileprivate mutating func writeForwardedNode(_ ip: String) {
        if ip.utf8.contains(UInt8(ascii: ":")) {
            self.writeStaticString("\"[")
            self.writeString(ip)
            self.writeStaticString("]\"")
        } else {
            self.writeString(ip)
        }
    }

    /// A token as it is, anything else as an RFC 9110 quoted-string (``ForwardedHeaders/quotedIfNeeded(_:)``).
    fileprivate mutating func writeTokenOrQuoted(_ value: String) {
        if value.utf8.allSatisfy(ForwardedHeaders.isTokenByte) {
            self.writeString(value)
            return
        }
        self.writeInteger(UInt8(ascii: "\""))
        // Usually nothing to escape (a host with a port): the value in one write.
        if !value.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            self.writeString(value)
            self.writeInteger(UInt8(ascii: "\""))
            return
        }
        for byte in value.utf8 {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { self.writeInteger(UInt8(ascii: "\\")) }
            self.writeInteger(byte)
        }
        self.writeInteger(UInt8(ascii: "\""))
    }
}
