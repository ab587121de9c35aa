import EthicalGateway
import NIOCore
import NIOHTTP1

/// Header rules between a client, the gateway and an upstream (RFC 9110 section 7.6.1, RFC 7239).
///
/// Both directions rebuild the header list in one pass: this runs for every proxied request and
/// response, and repeated `remove(name:)` calls would scan the list once per name. The new list
/// is collected as an array and wrapped once (`HTTPHeaders.init(_:)` takes it as it is, where
/// `add(name:value:)` checks every name's bytes again, 4% of a proxied request's instructions).
enum ForwardedHeaders {
    /// Hop-by-hop fields: they describe one connection and never travel past a proxy.
    static let hopByHop: [String] = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization", "proxy-authenticate",
    ]
    /// Bit n is set when a name in ``hopByHop`` is n bytes long.
    private static let hopByHopLengths: UInt64 = Self.hopByHop.reduce(0) { $0 | 1 << UInt64($1.utf8.count) }

    /// Whether `name` is hop-by-hop, or listed in the message's `Connection` header.
    static func isHopByHop(_ name: String, connectionTokens: [Substring]) -> Bool {
        // Most fields have a length no hop-by-hop name has: those skip the list.
        let length = name.utf8.count
        if length < 64, Self.hopByHopLengths & (1 << UInt64(length)) != 0 {
            for candidate in Self.hopByHop where candidate.utf8.count == length {
                if asciiCaseInsensitiveEquals(candidate, name) { return true }
            }
        }
        for token in connectionTokens where asciiCaseInsensitiveEquals(token, name) {
            return true
        }
        return false
    }

    /// The tokens of every `Connection` header (`close`, `keep-alive`, extension names).
    ///
    /// Split on the UTF-8 bytes: `split(separator:)` compares `Character`s, and cost 6,500
    /// instructions for one `Connection: keep-alive` (3% of a proxied request).
    static func connectionTokens(_ headers: HTTPHeaders) -> [Substring] {
        var tokens: [Substring] = []
        for (name, value) in headers where asciiCaseInsensitiveEquals(name, "connection") {
            Self.forEachToken(of: value) { tokens.append($0) }
        }
        return tokens
    }

    /// Calls `body` with each token of a comma-separated list, without the whitespace around it.
    static func forEachToken(of value: String, _ body: (Substring) -> Void) {
        let utf8 = value.utf8
        var start = utf8.startIndex
        while start < utf8.endIndex {
            let end = utf8[start...].firstIndex(of: UInt8(ascii: ",")) ?? utf8.endIndex
            var tokenStart = start
            var tokenEnd = end
            while tokenStart < tokenEnd, Self.isOWS(utf8[tokenStart]) { utf8.formIndex(after: &tokenStart) }
            while tokenEnd > tokenStart, Self.isOWS(utf8[utf8.index(before: tokenEnd)]) {
                utf8.formIndex(before: &tokenEnd)
            }
            // Indices of ASCII bytes are character boundaries, so this cuts no character.
            if tokenStart < tokenEnd { body(value[tokenStart..<tokenEnd]) }
            start = end == utf8.endIndex ? end : utf8.index(after: end)
        }
    }

    @inline(__always)
    private static func isOWS(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// Removes the hop-by-hop fields and every field the `Connection` header names.
    ///
    /// One pass over the names finds what there is to remove, without splitting the `Connection`
    /// tokens into an array: the common answer, with `Connection: keep-alive` (or `close`, or
    /// none) and no other hop-by-hop field, loses that one field in place; anything else
    /// rebuilds the list once.
    static func removeHopByHop(_ headers: inout HTTPHeaders) {
        var hasConnection = false
        var hasOtherHopByHop = false
        for (name, _) in headers {
            let length = name.utf8.count
            guard length < 64, Self.hopByHopLengths & (1 << UInt64(length)) != 0 else { continue }
            if length == 10, asciiCaseInsensitiveEquals(name, "connection") {
                hasConnection = true
            } else if Self.isListedHopByHop(name) {
                hasOtherHopByHop = true
            }
        }
        if !hasOtherHopByHop, !(hasConnection && Self.connectionNamesAnotherField(headers)) {
            // NIO caches the keep-alive state the upstream's message implied (HTTP/1.0 without
            // Connection: close); a rebuilt list would not carry it, and this list must not
            // either: removing the Connection field, present or not, resets it.
            headers.remove(name: "connection")
            return
        }
        let tokens = Self.connectionTokens(headers)
        var kept: [(String, String)] = []
        kept.reserveCapacity(headers.count)
        for (name, value) in headers where !Self.isHopByHop(name, connectionTokens: tokens) {
            kept.append((name, value))
        }
        headers = HTTPHeaders(kept)
    }

    /// Whether `name` is in ``hopByHop`` (ASCII case-insensitive).
    private static func isListedHopByHop<Name: StringProtocol>(_ name: Name) -> Bool {
        let length = name.utf8.count
        guard length < 64, Self.hopByHopLengths & (1 << UInt64(length)) != 0 else { return false }
        for candidate in Self.hopByHop where candidate.utf8.count == length {
            if asciiCaseInsensitiveEquals(candidate, name) { return true }
        }
        return false
    }

    /// Whether a `Connection` token names a field of `headers` that is not in ``hopByHop``
    /// (`Connection: keep-alive` names none; `Connection: close, X-Secret` with an `X-Secret`
    /// field does).
    private static func connectionNamesAnotherField(_ headers: HTTPHeaders) -> Bool {
        for (name, value) in headers where asciiCaseInsensitiveEquals(name, "connection") {
            var found = false
            Self.forEachToken(of: value) { token in
                guard !found, !Self.isListedHopByHop(token) else { return }
                found = headers.contains { asciiCaseInsensitiveEquals($0.name, token) }
            }
            if found { return true }
        }
        return false
    }

    /// What a client's request field is to the proxy, by its name.
    enum RequestFieldRole {
        case host, expect, forwarded, requestID, traceparent, tracestate
        case xForwardedFor, xForwardedHost, xForwardedProto, contentLength
        /// Passed on as it is (unless hop-by-hop).
        case other
    }

    /// The role of the request field `name` (ASCII case-insensitive), dispatched on its length
    /// first: most fields have a length none of these names has.
    static func role(ofRequestField name: String) -> RequestFieldRole {
        switch name.utf8.count {
        case 4 where asciiCaseInsensitiveEquals(name, "host"): return .host
        case 6 where asciiCaseInsensitiveEquals(name, "expect"): return .expect
        case 9 where asciiCaseInsensitiveEquals(name, "forwarded"): return .forwarded
        case 10 where asciiCaseInsensitiveEquals(name, "tracestate"): return .tracestate
        case 11 where asciiCaseInsensitiveEquals(name, "traceparent"): return .traceparent
        case 12 where asciiCaseInsensitiveEquals(name, "x-request-id"): return .requestID
        case 14 where asciiCaseInsensitiveEquals(name, "content-length"): return .contentLength
        case 15 where asciiCaseInsensitiveEquals(name, "x-forwarded-for"): return .xForwardedFor
        case 16 where asciiCaseInsensitiveEquals(name, "x-forwarded-host"): return .xForwardedHost
        case 17 where asciiCaseInsensitiveEquals(name, "x-forwarded-proto"): return .xForwardedProto
        default: return .other
        }
    }

    /// The head sent to `upstream` for `request`: hop-by-hop fields removed, `X-Forwarded-For`,
    /// `-Proto`, `-Host` and `Forwarded` appended to (trusted client) or replaced (anyone else),
    /// `X-Request-ID` set, `traceparent` naming the gateway's span, and `Host` preserved or
    /// rewritten.
    static func upstreamHead(
        for request: GatewayRequest,
        upstream: Upstream,
        preserveHost: Bool,
        trustedProxies: TrustedProxies,
        upgrade: String? = nil,
        attemptSpan: RequestSpan? = nil
    ) -> HTTPRequestHead {
        let incoming = request.head.headers
        let tokens = Self.connectionTokens(incoming)
        let trusted = trustedProxies.contains(request.remoteAddress)
        var headers: [(String, String)] = []
        headers.reserveCapacity(incoming.count + 8)
        var clientHost: String?
        var forwardedFor: [String] = []
        var forwarded: [String] = []
        var forwardedProto: String?
        var forwardedHost: String?
        for (name, value) in incoming {
            if Self.isHopByHop(name, connectionTokens: tokens) { continue }
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
            case .contentLength, .other:
                break
            }
            headers.append((name, value))
        }
        if !preserveHost || clientHost == nil {
            headers.append(("host", upstream.hostHeader))
        }
        let clientIP = request.remoteAddress?.ipAddress ?? "unknown"
        forwardedFor.append(clientIP)
        headers.append(("x-forwarded-for", forwardedFor.joined(separator: ", ")))
        headers.append(("x-forwarded-proto", forwardedProto ?? request.scheme))
        if let host = forwardedHost ?? clientHost { headers.append(("x-forwarded-host", host)) }
        var element = "for=\(Self.forwardedNode(clientIP));proto=\(request.scheme)"
        if let clientHost { element += ";host=\(Self.quotedIfNeeded(clientHost))" }
        forwarded.append(element)
        headers.append(("forwarded", forwarded.joined(separator: ", ")))
        headers.append(("x-request-id", request.requestID))
        if let trace = attemptSpan?.trace ?? request.trace {
            // The upstream's parent is the gateway's span (the attempt's span when spans are
            // exported); the caller's tracestate goes on as is.
            headers.append(("traceparent", trace.traceparent))
            if let state = trace.traceState { headers.append(("tracestate", state)) }
        }
        if let upgrade {
            // An upgrade is the one hop-by-hop exchange a proxy passes on, explicitly.
            headers.append(("connection", "upgrade"))
            headers.append(("upgrade", upgrade))
        }
        return HTTPRequestHead(
            version: .http1_1,
            method: request.head.method,
            uri: request.head.uri,
            headers: HTTPHeaders(headers)
        )
    }

    /// The protocol a request asks to switch to (`Upgrade` with `Connection: upgrade`), if any.
    ///
    /// Only `websocket` is passed on: an upstream that accepts `Upgrade: h2c` would turn the
    /// connection into an HTTP/2 tunnel whose later requests skip the gateway's routing and auth
    /// ("h2c smuggling"); any other upgrade is forwarded as a plain request, without `Upgrade`.
    static func requestedUpgrade(_ headers: HTTPHeaders) -> String? {
        guard let upgrade = headers.first(name: "upgrade"),
            Self.connectionTokens(headers).contains(where: { asciiCaseInsensitiveEquals($0, "upgrade") }),
            asciiCaseInsensitiveEquals(Substring(upgrade).trimmingASCIIWhitespace(), "websocket")
        else { return nil }
        return upgrade
    }

    /// RFC 7239 node: IPv6 addresses are bracketed and quoted.
    static func forwardedNode(_ ip: String) -> String {
        ip.utf8.contains(UInt8(ascii: ":")) ? "\"[\(ip)]\"" : ip
    }

    /// A token as is, anything else as an RFC 9110 quoted-string.
    private static func quotedIfNeeded(_ value: String) -> String {
        if value.utf8.allSatisfy(Self.isTokenByte) { return value }
        var quoted: [UInt8] = [UInt8(ascii: "\"")]
        quoted.reserveCapacity(value.utf8.count + 4)
        for byte in value.utf8 {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { quoted.append(UInt8(ascii: "\\")) }
            quoted.append(byte)
        }
        quoted.append(UInt8(ascii: "\""))
        return String(decoding: quoted, as: UTF8.self)
    }

    /// RFC 9110 tchar.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}

/// ASCII case-insensitive comparison, without allocating lower-cased copies.
///
/// Compares the contiguous UTF-8 of native strings byte by byte; `zip` over two `UTF8View`s
/// was 1.6% of a proxied request's instructions on its own.
func asciiCaseInsensitiveEquals<A: StringProtocol, B: StringProtocol>(_ lhs: A, _ rhs: B) -> Bool {
    guard lhs.utf8.count == rhs.utf8.count else { return false }
    let contiguous = lhs.utf8.withContiguousStorageIfAvailable { left in
        rhs.utf8.withContiguousStorageIfAvailable { right in
            for index in 0..<left.count where !asciiCaseInsensitiveEquals(left[index], right[index]) {
                return false
            }
            return true
        }
    }
    if let result = contiguous ?? nil { return result }
    for (left, right) in zip(lhs.utf8, rhs.utf8) where !asciiCaseInsensitiveEquals(left, right) {
        return false
    }
    return true
}

@inline(__always)
private func asciiCaseInsensitiveEquals(_ left: UInt8, _ right: UInt8) -> Bool {
    left == right || (left | 0x20 == right | 0x20 && left | 0x20 >= 0x61 && left | 0x20 <= 0x7A)
}
