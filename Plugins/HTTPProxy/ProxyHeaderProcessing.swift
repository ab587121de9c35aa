@_spi(Benchmarks) public import EthicalGateway
public import NIOCore
public import NIOHTTP1

/// The header work of one proxied exchange, as ``ProxyExchange`` does it, for the micro
/// benchmarks in `Benchmarks/` (ordo-one/benchmark). SPI, not API:
/// `@_spi(Benchmarks) import HTTPProxyPlugin` is needed to see it.
///
/// On the way up: hop-by-hop fields and those the `Connection` header names removed,
/// `X-Forwarded-*` and `Forwarded` appended or replaced, `X-Request-ID` and `Host` set, then the
/// backend's `requestHeaders` rules. On the way down: hop-by-hop fields removed, then the
/// `responseHeaders` rules.
@_spi(Benchmarks)
public struct ProxyHeaderProcessing: Sendable {
    private let upstream: Upstream
    private let preserveHost: Bool
    private let trustedProxies: TrustedProxies
    private let requestHeaders: HeaderRewriter
    private let responseHeaders: HeaderRewriter

    /// Settings as an `http-proxy` backend's `config` would give them.
    ///
    /// - Throws: when `upstreamURL` or an entry of `trustedProxies` does not parse.
    public init(
        upstreamURL: String,
        preserveHost: Bool = true,
        trustedProxies: [String] = [],
        requestHeaders: HeaderRules = HeaderRules(),
        responseHeaders: HeaderRules = HeaderRules()
    ) throws {
        self.upstream = try Upstream.parse(upstreamURL, index: 0, weight: 1).get()
        self.preserveHost = preserveHost
        self.trustedProxies = try TrustedProxies.parse(trustedProxies).get()
        self.requestHeaders = HeaderRewriter(requestHeaders)
        self.responseHeaders = HeaderRewriter(responseHeaders)
    }

    /// The head sent to the upstream for `request`.
    public func upstreamHead(for request: GatewayRequest) -> HTTPRequestHead {
        var head = ForwardedHeaders.upstreamHead(
            for: request,
            upstream: self.upstream,
            preserveHost: self.preserveHost,
            trustedProxies: self.trustedProxies
        )
        if !self.requestHeaders.isEmpty { self.requestHeaders.apply(to: &head.headers) }
        return head
    }

    /// The bytes sent to the upstream for `request`'s head, as the proxy writes them (built as
    /// bytes at once without `requestHeaders` rules, through `HTTPHeaders` with them).
    public func upstreamHeadBytes(for request: GatewayRequest) -> ByteBuffer {
        ForwardedHeaders.upstreamRequestHead(
            for: request,
            upstream: self.upstream,
            preserveHost: self.preserveHost,
            trustedProxies: self.trustedProxies,
            rules: self.requestHeaders,
            allocator: ByteBufferAllocator()
        ).bytes
    }

    /// The head sent back to the client for the upstream's `head`.
    public func downstreamHead(for head: HTTPResponseHead) -> HTTPResponseHead {
        var downstream = head
        ForwardedHeaders.removeHopByHop(&downstream.headers)
        if !self.responseHeaders.isEmpty { self.responseHeaders.apply(to: &downstream.headers) }
        return downstream
    }
}
