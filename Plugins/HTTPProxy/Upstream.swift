import EthicalGateway
import Foundation
import NIOCore

/// An upstream server, parsed from its URL.
struct Upstream: Sendable, CustomStringConvertible {
    let index: Int
    let url: String
    let host: String
    let port: Int
    let usesTLS: Bool
    let weight: Int
    /// The `Host` header value when the client's host is not preserved.
    let hostHeader: String
    /// The address to connect to when `host` is an IP address: no resolver round trip for
    /// each new connection. Host names are resolved on every connect (DNS changes are seen).
    let literalAddress: SocketAddress?

    var description: String { self.url }

    /// Parses `http(s)://host[:port]`; the error message says what is wrong with the URL.
    static func parse(_ url: String, index: Int, weight: Int) -> Result<Upstream, UpstreamURLError> {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https"
        else {
            return .failure(UpstreamURLError("expected an http:// or https:// URL, found \"\(url)\""))
        }
        guard let host = components.host, !host.isEmpty else {
            return .failure(UpstreamURLError("the URL \"\(url)\" has no host"))
        }
        if let port = components.port, !(1...65535).contains(port) {
            return .failure(UpstreamURLError("expected a port between 1 and 65535 in \"\(url)\""))
        }
        guard components.path.isEmpty || components.path == "/", components.query == nil, components.user == nil,
            components.fragment == nil
        else {
            return .failure(
                UpstreamURLError(
                    "expected only scheme, host and port in \"\(url)\" (use the route's rewritePrefix for paths)"
                )
            )
        }
        let usesTLS = scheme == "https"
        let defaultPort = usesTLS ? 443 : 80
        let port = components.port ?? defaultPort
        let bareHost = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        let hostForHeader = bareHost.contains(":") ? "[\(bareHost)]" : bareHost
        return .success(
            Upstream(
                index: index,
                url: url,
                host: bareHost,
                port: port,
                usesTLS: usesTLS,
                weight: weight,
                hostHeader: port == defaultPort ? hostForHeader : "\(hostForHeader):\(port)",
                literalAddress: try? SocketAddress(ipAddress: bareHost, port: port)
            )
        )
    }
}

struct UpstreamURLError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
