import Logging
public import NIOCore
public import NIOHTTP1

@_spi(Benchmarks)
extension GatewayRequest {
    /// A request as the router hands it to filters and backends, made outside a connection for
    /// the micro benchmarks in `Benchmarks/` (ordo-one/benchmark). SPI, not API: plugins never
    /// make requests, and `@_spi(Benchmarks) import EthicalGateway` is needed to see this.
    ///
    /// `path` is taken from `head.uri` without its query; nothing is logged.
    public init(
        benchmarkHead head: HTTPRequestHead,
        host: String?,
        scheme: String,
        remoteAddress: SocketAddress?,
        eventLoop: any EventLoop
    ) {
        let query = head.uri.firstIndex(of: "?")
        self.init(
            head: head,
            originalURI: head.uri,
            path: String(head.uri[..<(query ?? head.uri.endIndex)]),
            query: query.map { String(head.uri[head.uri.index(after: $0)...]) },
            host: host,
            requestID: "benchmark-request-id",
            scheme: scheme,
            remoteAddress: remoteAddress,
            routeName: "benchmark",
            eventLoop: eventLoop,
            baseLogger: Logger(label: "benchmark", factory: { _ in SwiftLogNoOpLogHandler() })
        )
    }
}
