import Benchmark
@_spi(Benchmarks) import EthicalGateway
@_spi(Benchmarks) import HTTPProxyPlugin
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// The header work of one proxied request and its response in the `http-proxy` backend: the
/// upstream head (hop-by-hop removal, `X-Forwarded-*`, `Forwarded`, `X-Request-ID`, `Host`), the
/// response head (hop-by-hop removal), each with and without the backend's header rules.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        scalingFactor: .kilo,
        maxDuration: .seconds(2)
    )
    // What a browser behind a trusted load balancer sends: 12 fields, two of them hop-by-hop
    // and one named by `Connection`.
    let requestHeaders: HTTPHeaders = [
        "Host": "api.example.com",
        "User-Agent":
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "Accept": "application/json, text/plain, */*",
        "Accept-Language": "en-GB,en;q=0.9",
        "Accept-Encoding": "gzip, deflate, br",
        "Authorization": "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
        "Cookie": "session=0123456789abcdef; theme=dark",
        "Connection": "keep-alive, X-Debug-Hop",
        "Keep-Alive": "timeout=5",
        "X-Debug-Hop": "1",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Proto": "https",
    ]
    let responseHeaders: HTTPHeaders = [
        "Content-Type": "application/json",
        "Content-Length": "512",
        "Date": "Sun, 29 Nov 2026 12:00:00 GMT",
        "Cache-Control": "no-store",
        "Connection": "keep-alive",
        "Keep-Alive": "timeout=60",
        "Server": "upstream",
        "Vary": "Accept-Encoding",
    ]
    let eventLoop = EmbeddedEventLoop()
    let request = GatewayRequest(
        benchmarkHead: HTTPRequestHead(
            version: .http1_1,
            method: .GET,
            uri: "/orders/42?expand=items",
            headers: requestHeaders
        ),
        host: "api.example.com",
        scheme: "https",
        remoteAddress: try! SocketAddress(ipAddress: "10.0.0.2", port: 51234),
        eventLoop: eventLoop
    )
    let response = HTTPResponseHead(version: .http1_1, status: .ok, headers: responseHeaders)
    var requestRules = HeaderRules()
    requestRules.set = ["X-Gateway": "ethical", "X-Tenant": "acme"]
    requestRules.remove = ["Cookie"]
    var responseRules = HeaderRules()
    responseRules.set = ["Strict-Transport-Security": "max-age=63072000"]
    responseRules.remove = ["Server"]
    let plain: ProxyHeaderProcessing
    let withRules: ProxyHeaderProcessing
    do {
        plain = try ProxyHeaderProcessing(upstreamURL: "http://127.0.0.1:8080", trustedProxies: ["10.0.0.0/8"])
        withRules = try ProxyHeaderProcessing(
            upstreamURL: "http://127.0.0.1:8080",
            trustedProxies: ["10.0.0.0/8"],
            requestHeaders: requestRules,
            responseHeaders: responseRules
        )
    } catch {
        fatalError("the benchmark's proxy settings do not parse: \(error)")
    }

    Benchmark("request head to upstream") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(plain.upstreamHead(for: request))
        }
    }
    Benchmark("request head to upstream, with header rules") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(withRules.upstreamHead(for: request))
        }
    }
    Benchmark("response head to client") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(plain.downstreamHead(for: response))
        }
    }
    Benchmark("response head to client, with header rules") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(withRules.downstreamHead(for: response))
        }
    }
}
