/// A request target split into its parts (RFC 9112 3.2): origin-form (`/path?query`) or
/// absolute-form (`http://host:port/path?query`, which a server MUST accept and whose authority
/// replaces `Host`). The asterisk-form (`OPTIONS *`) and authority-form (`CONNECT`) name no
/// resource a route could serve and are refused.
public struct RequestTarget: Sendable, Equatable {
    /// The authority of an absolute-form target (`host[:port]`), else `nil`.
    public var authority: Substring?
    /// The raw path (`/` when an absolute-form target has none).
    public var path: Substring
    /// The query without `?`, if any.
    public var query: Substring?

    /// Splits `target`; `nil` when it is neither origin- nor absolute-form.
    public static func parse(_ target: String) -> RequestTarget? {
        var rest = Substring(target)
        var authority: Substring?
        if rest.first != "/" {
            guard let schemeEnd = rest.firstIndex(of: ":"), rest[schemeEnd...].hasPrefix("://"),
                ["http", "https"].contains(rest[..<schemeEnd].lowercased())
            else { return nil }
            rest = rest[rest.index(schemeEnd, offsetBy: 3)...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
            let found = rest[..<authorityEnd]
            // userinfo is deprecated in http(s) URIs (RFC 9110 4.2.4) and a classic way to
            // confuse parsers about which host is meant.
            guard !found.isEmpty, !found.contains("@"), isValidHostHeader(found) else { return nil }
            authority = found
            rest = rest[authorityEnd...]
        }
        let queryMark = rest.firstIndex(of: "?")
        var path = queryMark.map { rest[..<$0] } ?? rest
        if authority != nil && path.isEmpty { path = "/" }
        let query = queryMark.map { rest[rest.index(after: $0)...] }
        return RequestTarget(authority: authority, path: path, query: query)
    }
}

/// Whether `value` is a valid `Host` field value (RFC 9110 7.2: `uri-host [ ":" port ]`): a
/// registered name of unreserved and sub-delims characters or escapes, an IPv4 address, or a
/// bracketed IPv6 literal; an optional decimal port.
public func isValidHostHeader(_ value: String) -> Bool {
    isValidHostHeader(Substring(value))
}

/// ``isValidHostHeader(_:)-(String)`` for part of a string (an absolute-form authority).
public func isValidHostHeader(_ value: Substring) -> Bool {
    // Over the bytes in place (a native string's always are): walking `Substring.UTF8View`
    // index by index cost about 1,700 instructions for a `Host` of 15 bytes.
    if let valid = value.utf8.withContiguousStorageIfAvailable(isValidHostHeader(bytes:)) { return valid }
    return isValidHostHeader(bytes: Array(value.utf8))
}

private func isValidHostHeader<Bytes: RandomAccessCollection<UInt8>>(bytes: Bytes) -> Bool {
    guard let first = bytes.first, bytes.count <= 255 + 6 else { return false }
    var hostEnd = bytes.endIndex
    if first == UInt8(ascii: "[") {
        guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
        let literal = bytes[bytes.index(after: bytes.startIndex)..<close]
        guard !literal.isEmpty,
            literal.allSatisfy({ isASCIIHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
        else { return false }
        hostEnd = bytes.index(after: close)
        if hostEnd < bytes.endIndex && bytes[hostEnd] != UInt8(ascii: ":") { return false }
    } else {
        if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) { hostEnd = colon }
        let name = bytes[..<hostEnd]
        guard !name.isEmpty else { return false }
        for byte in name {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                // unreserved and sub-delims punctuation, and `%` of escapes
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "!"),
                UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
                UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="),
                UInt8(ascii: "%"):
                continue
            default:
                return false
            }
        }
    }
    if hostEnd < bytes.endIndex {
        let port = bytes[bytes.index(after: hostEnd)...]
        guard port.count <= 5, port.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return false
        }
    }
    return true
}

@inline(__always)
private func isASCIIHexDigit(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
        UInt8(ascii: "A")...UInt8(ascii: "F"):
        return true
    default:
        return false
    }
}
