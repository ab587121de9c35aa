@_spi(Benchmarks) import EthicalGateway
@_spi(Benchmarks) import HTTPProxyPlugin
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The `http-proxy` backend's header work on both ways, field by field (the live proxy tests
/// see it through a real upstream; these pin down order, tokens and NIO's keep-alive cache).
@Suite("http-proxy header work: hop-by-hop fields, Connection tokens, forwarding fields")
struct ProxyHeaderTests {
    /// A response head as NIO's decoder reads it from `text` (with its cached keep-alive state).
    static func decodedResponseHead(_ text: String) throws -> HTTPResponseHead {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try channel.pipeline.syncOperations.addHTTPClientHandlers()
        // The decoder pairs each response with a request sent before it.
        try channel.writeOutbound(
            HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"))
        )
        try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        try channel.writeInbound(ByteBuffer(string: text))
        while let part = try channel.readInbound(as: HTTPClientResponsePart.self) {
            if case .head(let head) = part { return head }
        }
        throw CancellationError()
    }

    @Test("hop-by-hop fields and every field the Connection header names are removed; the rest keeps its order")
    func responseHopByHop() throws {
        let processing = try ProxyHeaderProcessing(upstreamURL: "http://127.0.0.1:1")
        let head = try Self.decodedResponseHead(
            "HTTP/1.1 200 OK\r\nX-Z: 1\r\nConnection: , X-A ,,keep-alive\r\nX-A: gone\r\nKeep-Alive: timeout=5\r\n"
                + "x-a: gone too\r\nX-B: 2\r\nTransfer-Encoding: chunked\r\nUpgrade: h2c\r\n\r\n"
        )
        let downstream = processing.downstreamHead(for: head)
        #expect(downstream.headers.map(\.name) == ["X-Z", "X-B"])
        #expect(downstream.headers.map(\.value) == ["1", "2"])
    }

    @Test("a head whose only hop-by-hop field is Connection loses just that field, and NIO's keep-alive cache")
    func connectionOnly() throws {
        let processing = try ProxyHeaderProcessing(upstreamURL: "http://127.0.0.1:1")
        let upstream = try Self.decodedResponseHead(
            "HTTP/1.0 200 OK\r\nServer: s\r\nConnection: keep-alive\r\nContent-Length: 2\r\nconnection: close\r\n\r\nok"
        )
        var downstream = processing.downstreamHead(for: upstream)
        #expect(downstream.headers.map(\.name) == ["Server", "Content-Length"])
        // Sent to an HTTP/1.1 client, the list says nothing about the upstream's connection.
        downstream.version = .http1_1
        #expect(downstream.isKeepAlive)
    }

    @Test("a head without hop-by-hop fields is passed on, without the keep-alive state NIO cached for the upstream")
    func keepAliveCache() throws {
        let processing = try ProxyHeaderProcessing(upstreamURL: "http://127.0.0.1:1")
        // An HTTP/1.0 upstream without Connection: NIO caches "close" in the headers.
        let upstream = try Self.decodedResponseHead("HTTP/1.0 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nok")
        #expect(!upstream.isKeepAlive)
        var downstream = processing.downstreamHead(for: upstream)
        #expect(downstream.headers.map(\.name) == ["Content-Length", "X-A"])
        // Sent to an HTTP/1.1 client, it is a keep-alive response, as a rebuilt list says.
        downstream.version = .http1_1
        #expect(downstream.isKeepAlive)
    }

    @Test("the upstream head: hop-by-hop and client-sent forwarding fields out, the gateway's in, in order")
    func upstreamHead() throws {
        let processing = try ProxyHeaderProcessing(upstreamURL: "http://127.0.0.1:9")
        var headers = HTTPHeaders()
        for (name, value) in [
            ("Host", "app.test:8080"), ("Connection", "keep-alive, X-Secret"), ("X-Secret", "s"),
            ("X-Forwarded-For", "6.6.6.6"), ("Forwarded", "for=6.6.6.6"), ("Expect", "100-continue"),
            ("X-Request-ID", "client-chosen"), ("Accept", "*/*"), ("TE", "trailers"),
        ] {
            headers.add(name: name, value: value)
        }
        let request = GatewayRequest(
            benchmarkHead: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/a?b", headers: headers),
            host: "app.test",
            scheme: "https",
            remoteAddress: try SocketAddress(ipAddress: "192.0.2.7", port: 4000),
            eventLoop: EmbeddedEventLoop()
        )
        let head = processing.upstreamHead(for: request)
        #expect(head.uri == "/a?b")
        #expect(
            head.headers.map(\.name) == [
                "Host", "Accept", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded",
                "x-request-id",
            ]
        )
        #expect(head.headers["host"] == ["app.test:8080"])
        #expect(head.headers["x-forwarded-for"] == ["192.0.2.7"])
        #expect(head.headers["forwarded"] == ["for=192.0.2.7;proto=https;host=\"app.test:8080\""])
        #expect(head.headers["x-request-id"] == ["benchmark-request-id"])
    }
}
