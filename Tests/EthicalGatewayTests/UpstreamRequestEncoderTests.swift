import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@_spi(Benchmarks) @testable import EthicalGateway
@_spi(Benchmarks) @testable import HTTPProxyPlugin

/// The `http-proxy` backend writes its upstream request heads as bytes and frames the body
/// itself (``UpstreamRequestEncoder``): the bytes must be what NIO's `HTTPRequestEncoder` wrote
/// for the same head, and the response decoder must still learn each request's method.
@Suite("http-proxy upstream request encoding: heads as bytes, body framing, responses to HEAD")
struct UpstreamRequestEncoderTests {
    /// What NIO's `HTTPRequestEncoder` (automatic framing, as the proxy used it) writes for `head`.
    static func nioBytes(_ head: HTTPRequestHead) throws -> String {
        let channel = EmbeddedChannel(handler: HTTPRequestEncoder())
        defer { _ = try? channel.finish() }
        try channel.writeOutbound(HTTPClientRequestPart.head(head))
        var text = ""
        while let part = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: part) }
        return text
    }

    static func request(
        method: HTTPMethod = .GET,
        uri: String = "/a?b",
        fields: [(String, String)],
        client: String = "192.0.2.7",
        scheme: String = "https",
        trace: Bool = false
    ) throws -> GatewayRequest {
        var request = GatewayRequest(
            benchmarkHead: HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(fields)),
            host: "app.test",
            scheme: scheme,
            remoteAddress: try SocketAddress(ipAddress: client, port: 4000),
            eventLoop: EmbeddedEventLoop()
        )
        if trace {
            request.trace = TraceContext.make(
                traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                tracestate: "vendor=x"
            )
        }
        return request
    }

    @Test("the head written as bytes is byte for byte what NIO's encoder writes for the head built as HTTPHeaders")
    func sameBytesAsNIO() throws {
        var rules = HeaderRules()
        rules.set = ["X-Set": "1"]
        rules.remove = ["Cookie"]
        let settings = [
            try ProxyHeaderProcessing(upstreamURL: "http://127.0.0.1:9"),
            try ProxyHeaderProcessing(upstreamURL: "http://up.test:8080", preserveHost: false),
            try ProxyHeaderProcessing(upstreamURL: "http://127.0.0.1:9", trustedProxies: ["192.0.2.0/24", "::1/128"]),
            try ProxyHeaderProcessing(upstreamURL: "http://127.0.0.1:9", requestHeaders: rules),
        ]
        let common: [(String, String)] = [
            ("Host", "app.test:8080"), ("Connection", "keep-alive, X-Secret"), ("X-Secret", "s"),
            ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "7.7.7.7"), ("Forwarded", "for=6.6.6.6"),
            ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "a.test"), ("Expect", "100-continue"),
            ("X-Request-ID", "client-chosen"), ("traceparent", "00-x"), ("Accept", "*/*"), ("TE", "trailers"),
            ("Cookie", "c=1"),
        ]
        let requests = [
            try Self.request(fields: common),
            try Self.request(fields: common, trace: true),
            try Self.request(fields: [("Host", "app.test")], client: "::1", scheme: "http"),
            try Self.request(fields: [("host", "we\"ird\\host")]),
            try Self.request(fields: [], client: "::1"),
            try Self.request(fields: [("Host", "a")], client: "10.100.0.255"),
            try Self.request(method: .POST, fields: common),
            try Self.request(method: .POST, fields: [("Host", "a"), ("Content-Length", "5")]),
            try Self.request(method: .PUT, fields: [("Host", "a"), ("Transfer-Encoding", "chunked")]),
            try Self.request(method: .PATCH, fields: [("Host", "a")]),
            try Self.request(method: .GET, fields: [("Host", "a"), ("content-length", "3")]),
            try Self.request(method: .RAW(value: "PURGE"), uri: "*", fields: [("Host", "a"), ("Content-Length", "0")]),
        ]
        var compared = 0
        for processing in settings {
            for request in requests {
                let expected = try Self.nioBytes(processing.upstreamHead(for: request))
                #expect(String(buffer: processing.upstreamHeadBytes(for: request)) == expected)
                compared += 1
            }
        }
        #expect(compared == 48)
    }

    @Test("a body NIO's rule would send unframed (GET or DELETE chunked, TRACE with a length) goes up chunked")
    func clientBodyIsFramed() throws {
        var rules = HeaderRules()
        rules.set = ["X-Set": "1"]
        let settings = [
            try ProxyHeaderProcessing(upstreamURL: "http://127.0.0.1:9"),
            try ProxyHeaderProcessing(upstreamURL: "http://127.0.0.1:9", requestHeaders: rules),
        ]
        let cases: [(HTTPMethod, [(String, String)], String?)] = [
            (.GET, [("Host", "a"), ("Transfer-Encoding", "chunked")], "transfer-encoding: chunked"),
            (.DELETE, [("Host", "a"), ("transfer-encoding", "chunked")], "transfer-encoding: chunked"),
            (.TRACE, [("Host", "a"), ("Content-Length", "3")], "transfer-encoding: chunked"),
            (.GET, [("Host", "a"), ("Content-Length", "3")], "Content-Length: 3"),
            (.TRACE, [("Host", "a"), ("Content-Length", "0")], nil),
            (.OPTIONS, [("Host", "a")], nil),
        ]
        for processing in settings {
            for (method, fields, framing) in cases {
                let head = String(
                    buffer: processing.upstreamHeadBytes(for: try Self.request(method: method, fields: fields))
                )
                let lines = head.split(separator: "\r\n").filter {
                    $0.lowercased().hasPrefix("content-length") || $0.lowercased().hasPrefix("transfer-encoding")
                }
                #expect(lines == (framing.map { [Substring($0)] } ?? []), "\(method) \(fields)")
            }
        }
    }

    @Test("body bytes after a head without framing are never written: the connection fails instead")
    func unframedBodyRefused() throws {
        let channel = EmbeddedChannel(handler: UpstreamRequestEncoder())
        defer { _ = try? channel.finish() }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/x", headers: ["Host": "a"])
        try channel.writeOutbound(HTTPClientRequestPart.head(head))
        #expect(try channel.readOutbound(as: ByteBuffer.self) != nil)
        #expect(throws: UpstreamRequestEncoder.UnframedBody.self) {
            try channel.writeOutbound(
                HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: "GET /smuggled HTTP/1.1\r\n\r\n")))
            )
        }
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
    }

    @Test("the client's POST without a length goes up chunked: chunk framing, empty parts unframed, trailers")
    func chunkedBody() throws {
        let channel = EmbeddedChannel(handler: UpstreamRequestEncoder())
        defer { _ = try? channel.finish() }
        let request = try Self.request(method: .POST, fields: [("Host", "a")])
        let head = ForwardedHeaders.serializedUpstreamHead(
            for: request,
            upstream: try Upstream.parse("http://127.0.0.1:9", index: 0, weight: 1).get(),
            preserveHost: true,
            trustedProxies: try TrustedProxies.parse([]).get(),
            allocator: channel.allocator
        )
        #expect(head.framing == .chunked)
        let encoder = try channel.pipeline.syncOperations.handler(type: UpstreamRequestEncoder.self)
        encoder.stage(head)
        try channel.writeOutbound(
            HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: ""))
        )
        try channel.writeOutbound(
            HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: String(repeating: "x", count: 300))))
        )
        try channel.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer())))
        try channel.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: "yz"))))
        var trailers = HTTPHeaders()
        trailers.add(name: "X-Sum", value: "1")
        try channel.writeOutbound(HTTPClientRequestPart.end(trailers))
        var text = ""
        while let part = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: part) }
        let body = text[text.range(of: "\r\n\r\n")!.upperBound...]
        #expect(text.hasPrefix("POST /a?b HTTP/1.1\r\nHost: a\r\n"))
        #expect(text.contains("\r\ntransfer-encoding: chunked\r\n\r\n"))
        #expect(body == "12c\r\n" + String(repeating: "x", count: 300) + "\r\n2\r\nyz\r\n0\r\nX-Sum: 1\r\n\r\n")
    }

    @Test("a head written without one staged is encoded from its fields, with NIO's framing")
    func unstagedHead() throws {
        let channel = EmbeddedChannel(handler: UpstreamRequestEncoder())
        defer { _ = try? channel.finish() }
        let head = HTTPRequestHead(version: .http1_1, method: .PUT, uri: "/x", headers: ["Host": "a"])
        try channel.writeOutbound(HTTPClientRequestPart.head(head))
        try channel.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: "abc"))))
        try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        var text = ""
        while let part = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: part) }
        #expect(text == (try Self.nioBytes(head)) + "3\r\nabc\r\n0\r\n\r\n")
    }

    @Test("the response decoder learns each request's method: a response to HEAD has no body, the next one has")
    func responseToHead() throws {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        let encoder = UpstreamRequestEncoder()
        let handler = UpstreamConnectionHandler()
        let recorder = ResponsePartRecorder()
        handler.delegate = recorder
        try channel.pipeline.syncOperations.addHandlers([encoder, handler])
        let upstream = try Upstream.parse("http://127.0.0.1:9", index: 0, weight: 1).get()
        let trusted = try TrustedProxies.parse([]).get()
        let connection = UpstreamConnection(
            channel: channel,
            handler: handler,
            encoder: encoder,
            upstream: upstream
        )
        for method in [HTTPMethod.HEAD, .GET] {
            connection.write(
                ForwardedHeaders.serializedUpstreamHead(
                    for: try Self.request(method: method, fields: [("Host", "a")]),
                    upstream: upstream,
                    preserveHost: true,
                    trustedProxies: trusted,
                    allocator: channel.allocator
                )
            )
            try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        }
        var sent = ""
        while let part = try channel.readOutbound(as: ByteBuffer.self) { sent += String(buffer: part) }
        #expect(sent.hasPrefix("HEAD /a?b HTTP/1.1\r\n"))
        #expect(sent.contains("\r\n\r\nGET /a?b HTTP/1.1\r\n"))
        // Both answers say Content-Length: 5; only the second one carries the five bytes.
        try channel.writeInbound(
            ByteBuffer(
                string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
            )
        )
        #expect(recorder.parts == ["head 200", "end", "head 200", "body hello", "end"])
    }
}

/// Stands in for the proxy's exchange behind an ``UpstreamConnectionHandler``: writes down the
/// response parts it is handed.
final class ResponsePartRecorder: UpstreamConnectionDelegate {
    var parts: [String] = []
    var closedWith: (any Error)??

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(let head): self.parts.append("head \(head.status.code)")
        case .body(let body): self.parts.append("body \(String(buffer: body))")
        case .end: self.parts.append("end")
        }
    }

    func upstreamReadComplete() {}
    func upstreamWritabilityChanged(isWritable: Bool) {}
    func upstreamClosed(error: (any Error)?) { self.closedWith = .some(error) }
}
