import EthicalGateway
import Foundation
import NIOCore
import NIOHTTP1

/// Header rules between a client, the gateway and an upstream (RFC 9110 section 7.6.1, RFC 7239).
enum ForwardedHeaders {
    /// Hop-by-hop fields: they describe one connection and never travel past a proxy.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization", "proxy-authenticate",
    ]

    /// Removes the hop-by-hop fields and every field the `Connection` header names.
    static func removeHopByHop(_ headers: inout HTTPHeaders) {
        let named = headers[canonicalForm: "connection"].map { $0.lowercased() }
        for name in Self.hopByHop { headers.remove(name: name) }
        for name in named { headers.remove(name: String(name)) }
    }

    /// The head sent to `upstream` for `request`: hop-by-hop fields removed, `X-Forwarded-For`,
    /// `-Proto`, `-Host` and `Forwarded` appended to (trusted client) or replaced (anyone else),
    /// `X-Request-ID` set, and `Host` preserved or rewritten.
    static func upstreamHead(
        for request: GatewayRequest,
        upstream: Upstream,
        preserveHost: Bool,
        trustedProxies: TrustedProxies
    ) -> HTTPRequestHead {
        var head = request.head
        head.version = .http1_1
        self.removeHopByHop(&head.headers)
        head.headers.remove(name: "expect")
        let clientHost = head.headers.first(name: "host")
        let trusted = trustedProxies.contains(request.remoteAddress)
        let clientIP = request.remoteAddress?.ipAddress ?? "unknown"

        let forwardedFor = trusted ? head.headers[canonicalForm: "x-forwarded-for"].map(String.init) : []
        head.headers.replaceOrAdd(name: "x-forwarded-for", value: (forwardedFor + [clientIP]).joined(separator: ", "))
        if !(trusted && head.headers.contains(name: "x-forwarded-proto")) {
            head.headers.replaceOrAdd(name: "x-forwarded-proto", value: request.scheme)
        }
        if !(trusted && head.headers.contains(name: "x-forwarded-host")) {
            if let clientHost {
                head.headers.replaceOrAdd(name: "x-forwarded-host", value: clientHost)
            } else {
                head.headers.remove(name: "x-forwarded-host")
            }
        }
        var element = "for=\(Self.forwardedNode(clientIP));proto=\(request.scheme)"
        if let clientHost { element += ";host=\(Self.quotedIfNeeded(clientHost))" }
        let forwarded = trusted ? head.headers["forwarded"] : []
        head.headers.replaceOrAdd(name: "forwarded", value: (forwarded + [element]).joined(separator: ", "))

        head.headers.replaceOrAdd(name: "x-request-id", value: request.requestID)
        if !preserveHost || clientHost == nil {
            head.headers.replaceOrAdd(name: "host", value: upstream.hostHeader)
        }
        return head
    }

    /// RFC 7239 node: IPv6 addresses are bracketed and quoted.
    private static func forwardedNode(_ ip: String) -> String {
        ip.contains(":") ? "\"[\(ip)]\"" : ip
    }

    private static func quotedIfNeeded(_ value: String) -> String {
        let token = value.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A)
                || "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
        return token
            ? value
            : "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                + "\""
    }
}
