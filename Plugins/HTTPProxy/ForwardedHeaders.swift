import EthicalGateway
import NIOCore
import NIOHTTP1

/// Header rules between a client, the gateway and an upstream (RFC 9110 section 7.6.1, RFC 7239).
///
/// Both directions rebuild the header list in one pass: this runs for every proxied request and
/// response, and repeated `remove(name:)` calls would scan the list once per name.
enum ForwardedHeaders {
    /// Hop-by-hop fields: they describe one connection and never travel past a proxy.
    static let hopByHop: [String] = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization", "proxy-authenticate",
    ]

    /// Whether `name` is hop-by-hop, or listed in the message's `Connection` header.
    private static func isHopByHop(_ name: String, connectionTokens: [Substring]) -> Bool {
        for candidate in Self.hopByHop where candidate.utf8.count == name.utf8.count {
            if asciiCaseInsensitiveEquals(candidate, name) { return true }
        }
        for token in connectionTokens where asciiCaseInsensitiveEquals(token, name) {
            return true
        }
        return false
    }

    /// The tokens of every `Connection` header (`close`, `keep-alive`, extension names).
    private static func connectionTokens(_ headers: HTTPHeaders) -> [Substring] {
        var tokens: [Substring] = []
        for (name, value) in headers where asciiCaseInsensitiveEquals(name, "connection") {
            for token in value.split(separator: ",") {
                tokens.append(token.trimmingASCIIWhitespace())
            }
        }
        return tokens
    }

    /// Removes the hop-by-hop fields and every field the `Connection` header names.
    static func removeHopByHop(_ headers: inout HTTPHeaders) {
        let tokens = Self.connectionTokens(headers)
        var kept = HTTPHeaders()
        kept.reserveCapacity(headers.count)
        for (name, value) in headers where !Self.isHopByHop(name, connectionTokens: tokens) {
            kept.add(name: name, value: value)
        }
        headers = kept
    }

    /// The head sent to `upstream` for `request`: hop-by-hop fields removed, `X-Forwarded-For`,
    /// `-Proto`, `-Host` and `Forwarded` appended to (trusted client) or replaced (anyone else),
    /// `X-Request-ID` set, and `Host` preserved or rewritten.
    static func upstreamHead(
        for request: GatewayRequest,
        upstream: Upstream,
        preserveHost: Bool,
        trustedProxies: TrustedProxies,
        upgrade: String? = nil
    ) -> HTTPRequestHead {
        let incoming = request.head.headers
        let tokens = Self.connectionTokens(incoming)
        let trusted = trustedProxies.contains(request.remoteAddress)
        var headers = HTTPHeaders()
        headers.reserveCapacity(incoming.count + 6)
        var clientHost: String?
        var forwardedFor: [String] = []
        var forwarded: [String] = []
        var forwardedProto: String?
        var forwardedHost: String?
        for (name, value) in incoming {
            if Self.isHopByHop(name, connectionTokens: tokens) { continue }
            switch name.utf8.count {
            case 4 where asciiCaseInsensitiveEquals(name, "host"):
                clientHost = value
                if !preserveHost { continue }
            case 6 where asciiCaseInsensitiveEquals(name, "expect"):
                continue
            case 9 where asciiCaseInsensitiveEquals(name, "forwarded"):
                if trusted { forwarded.append(value) }
                continue
            case 12 where asciiCaseInsensitiveEquals(name, "x-request-id"):
                continue
            case 15 where asciiCaseInsensitiveEquals(name, "x-forwarded-for"):
                if trusted { forwardedFor.append(value) }
                continue
            case 16 where asciiCaseInsensitiveEquals(name, "x-forwarded-host"):
                if trusted { forwardedHost = value }
                continue
            case 17 where asciiCaseInsensitiveEquals(name, "x-forwarded-proto"):
                if trusted { forwardedProto = value }
                continue
            default:
                break
            }
            headers.add(name: name, value: value)
        }
        if !preserveHost || clientHost == nil {
            headers.add(name: "host", value: upstream.hostHeader)
        }
        let clientIP = request.remoteAddress?.ipAddress ?? "unknown"
        forwardedFor.append(clientIP)
        headers.add(name: "x-forwarded-for", value: forwardedFor.joined(separator: ", "))
        headers.add(name: "x-forwarded-proto", value: forwardedProto ?? request.scheme)
        if let host = forwardedHost ?? clientHost { headers.add(name: "x-forwarded-host", value: host) }
        var element = "for=\(Self.forwardedNode(clientIP));proto=\(request.scheme)"
        if let clientHost { element += ";host=\(Self.quotedIfNeeded(clientHost))" }
        forwarded.append(element)
        headers.add(name: "forwarded", value: forwarded.joined(separator: ", "))
        headers.add(name: "x-request-id", value: request.requestID)
        if let upgrade {
            // An upgrade is the one hop-by-hop exchange a proxy passes on, explicitly.
            headers.add(name: "connection", value: "upgrade")
            headers.add(name: "upgrade", value: upgrade)
        }
        return HTTPRequestHead(version: .http1_1, method: request.head.method, uri: request.head.uri, headers: headers)
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
    private static func forwardedNode(_ ip: String) -> String {
        ip.utf8.contains(UInt8(ascii: ":")) ? "\"[\(ip)]\"" : ip
    }

    /// A token as is, anything else as an RFC 9110 quoted-string.
    private static func quotedIfNeeded(_ value: String) -> String {
        let extras = "!#$%&'*+-.^_`|~".utf8
        let isToken = value.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A) || extras.contains(byte)
        }
        if isToken { return value }
        var quoted = "\""
        for character in value {
            if character == "\"" || character == "\\" { quoted.append("\\") }
            quoted.append(character)
        }
        return quoted + "\""
    }
}

/// ASCII case-insensitive comparison, without allocating lower-cased copies.
func asciiCaseInsensitiveEquals<A: StringProtocol, B: StringProtocol>(_ lhs: A, _ rhs: B) -> Bool {
    guard lhs.utf8.count == rhs.utf8.count else { return false }
    for (left, right) in zip(lhs.utf8, rhs.utf8) where left != right {
        guard left | 0x20 == right | 0x20, left | 0x20 >= 0x61, left | 0x20 <= 0x7A else { return false }
    }
    return true
}
