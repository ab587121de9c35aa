import EthicalGateway
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Testing

@testable import EthicalGateway

/// ``GatewayHTTPHandler`` on an `EmbeddedChannel` behind NIO's HTTP/1.1 codec, as the listener
/// builds it, one state-machine transition at a time: the bytes a client sends in, the bytes
/// the gateway answers with, and what the backend saw. The live tests cover the same ground
/// over real sockets.
@Suite("GatewayHTTPHandler on an EmbeddedChannel")
struct GatewayHTTPHandlerEmbeddedTests {
    /// A backend the test answers by hand: it keeps every request's response writer.
    enum ManualBackendPlugin: BackendPlugin {
        static let id = "test-manual"
        struct Configuration: Decodable, Sendable { var key: String }

        static let exchanges = NIOLockedValueBox<[String: [ManualExchange]]>([:])

        static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Backend {
            ManualBackend(key: configuration.key)
        }

        struct ManualBackend: Backend {
            let key: String
            func handle(_ request: GatewayRequest, response: ResponseWriter) -> any RequestBodyReceiver {
                let exchange = ManualExchange(request: request, writer: response)
                ManualBackendPlugin.exchanges.withLockedValue { $0[self.key, default: []].append(exchange) }
                return exchange
            }
        }
    }

    /// One request the manual backend received, and what it received of its body.
    final class ManualExchange: RequestBodyReceiver, @unchecked Sendable {
        let request: GatewayRequest
        let writer: ResponseWriter
        var body = ""
        var ended = false
        var cancelled = false
        init(request: GatewayRequest, writer: ResponseWriter) {
            self.request = request
            self.writer = writer
        }
        func receiveBody(_ buffer: ByteBuffer) { self.body += String(buffer: buffer) }
        func receiveEnd() { self.ended = true }
        func cancel() { self.cancelled = true }

        func respond(_ body: String, headers: HTTPHeaders = [:]) {
            self.writer.respond(GatewayResponse(status: .ok, headers: headers, body: ByteBuffer(string: body)))
        }
    }

    /// Counts the reads that get past the gateway's handler to the socket.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var reads = 0
        func read(context: ChannelHandlerContext) {
            self.reads += 1
            context.read()
        }
    }

    /// Takes a close of the sending side as done without closing, as a socket would half-close:
    /// an `EmbeddedChannel` can only close whole, which would end a lingering close at once.
    final class HalfCloseAsSocket: ChannelOutboundHandler {
        typealias OutboundIn = Any
        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            if mode == .output { promise?.succeed(()) } else { context.close(mode: mode, promise: promise) }
        }
    }

    /// A channel with the HTTP/1.1 pipeline of a plain listener (without the head guard and
    /// idle timer, which have their own timers): `/manual` goes to the manual backend under
    /// `key`, everything else to a `respond` backend.
    struct Harness {
        let channel: EmbeddedChannel
        let key: String
        let reads: ReadCounter

        /// With `http2`, the handler serves one HTTP/2 stream: no codec, request and response parts
        /// in and out as the HTTP/2-to-HTTP/1 stream codec would hand them over.
        init(maxBodyBytes: Int = 1024, http2: Bool = false, halfCloses: Bool = false) async throws {
            self.key = UUID().uuidString
            var registry = testRegistry
            registry.register(ManualBackendPlugin.self)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let config = plainConfig(
                routes: """
                    [ { "match": { "pathPrefix": "/manual" }, "backend": "manual", "maxBodyBytes": \(maxBodyBytes) },
                      { "match": { "pathPrefix": "/suspended" }, "backend": "manual", "filters": ["later"],
                        "maxBodyBytes": \(maxBodyBytes) },
                      { "match": { "pathPrefix": "/held" }, "backend": "manual", "filters": ["upper"],
                        "maxBodyBytes": \(maxBodyBytes) },
                      { "backend": "fixed" } ]
                    """,
                backends: """
                    { "manual": { "plugin": "test-manual", "config": { "key": "\(self.key)" } },
                      "fixed": { "plugin": "respond", "config": { "body": "fixed" } } }
                    """,
                extra: """
                    "filters": { "later": { "plugin": "test-tag", "config": { "tag": "later", "suspendMilliseconds": 50 } },
                                 "upper": { "plugin": "test-upper-body", "config": { "limit": 8 } } }
                    """
            )
            let runtime = try await GatewayRuntimeBuilder(
                registry: registry,
                configDirectory: URL(fileURLWithPath: NSTemporaryDirectory()),
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                logger: logger,
                createDevelopmentCertificates: false
            ).load(data: Data(config.utf8))
            self.channel = EmbeddedChannel()
            self.reads = ReadCounter()
            let sync = self.channel.pipeline.syncOperations
            try sync.addHandler(self.reads)
            if halfCloses { try sync.addHandler(HalfCloseAsSocket()) }
            let decoder = http2 ? nil : try ListenerPipeline.addHTTP1RequestDecoder(to: sync, limits: runtime.limits)
            try sync.addHandler(
                GatewayHTTPHandler(
                    live: LiveRuntime(runtime, eventLoopGroup: self.channel.embeddedEventLoop),
                    scheme: "http",
                    isHTTP2: http2,
                    requestDecoder: decoder,
                    logger: logger
                )
            )
            try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        }

        var exchanges: [ManualExchange] {
            ManualBackendPlugin.exchanges.withLockedValue { $0[self.key] ?? [] }
        }

        func send(_ text: String) throws {
            try self.channel.writeInbound(ByteBuffer(string: text))
        }

        /// Everything written to the client so far.
        func written() throws -> String {
            var text = ""
            while let data = try self.channel.readOutbound(as: IOData.self) {
                if case .byteBuffer(let buffer) = data { text += String(buffer: buffer) }
            }
            return text
        }

        /// The status lines in `text` (a body without a final line break runs into the next one).
        func statusLines(_ text: String) -> [String] {
            text.components(separatedBy: "HTTP/1.1 ").dropFirst().filter { $0.first?.isNumber == true }.map {
                "HTTP/1.1 " + ($0.components(separatedBy: "\r\n").first ?? "")
            }
        }
    }

    @Test("a keep-alive request is answered with a request id and the connection stays open")
    func keepAlive() async throws {
        let harness = try await Harness()
        try harness.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try harness.written()
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(response.lowercased().contains("x-request-id: "))
        #expect(!response.lowercased().contains("connection: close"))
        #expect(response.hasSuffix("fixed"))
        #expect(harness.channel.isActive)
        try harness.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(harness.statusLines(try harness.written()) == ["HTTP/1.1 200 OK"])
        _ = try? harness.channel.finish()
    }

    @Test("a pipelined request waits, with reads held, until the response before it is written")
    func pipelining() async throws {
        let harness = try await Harness()
        try harness.send(
            "GET /manual/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /manual/2 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        #expect(harness.exchanges.count == 1, "the second request waits for the first's response")
        let readsBefore = harness.reads.reads
        harness.channel.read()
        #expect(harness.reads.reads == readsBefore, "reads are held while a response is due")
        harness.exchanges[0].respond("one")
        #expect(harness.exchanges.count == 2)
        #expect(harness.reads.reads == readsBefore, "still held: the second response is due")
        harness.exchanges[1].respond("two")
        let written = try harness.written()
        #expect(harness.statusLines(written).count == 3, "the third request is answered at once")
        let one = try #require(written.range(of: "one"))
        let two = try #require(written.range(of: "two"))
        let fixed = try #require(written.range(of: "fixed"))
        #expect(one.lowerBound < two.lowerBound && two.lowerBound < fixed.lowerBound, "answers in request order")
        #expect(harness.reads.reads == readsBefore + 1, "the held read is released")
        _ = try? harness.channel.finish()
    }

    @Test("Connection: close is answered with Connection: close, then the connection closes")
    func connectionClose() async throws {
        let harness = try await Harness()
        try harness.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        let written = try harness.written()
        #expect(written.lowercased().contains("connection: close"))
        #expect(harness.statusLines(written).count == 1, "nothing behind a closing response is served")
        harness.channel.embeddedEventLoop.run()
        #expect(!harness.channel.isActive)
    }

    @Test("a body over the route's limit gets a 413 and the connection closes; the backend is cancelled")
    func bodyOverLimit() async throws {
        let harness = try await Harness(maxBodyBytes: 4)
        try harness.send("POST /manual HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        #expect(harness.exchanges.first?.body == "abc")
        try harness.send("3\r\ndef\r\n0\r\n\r\n")
        let written = try harness.written()
        #expect(written.hasPrefix("HTTP/1.1 413 "))
        #expect(written.lowercased().contains("connection: close"))
        #expect(harness.exchanges.first?.cancelled == true)
        harness.channel.embeddedEventLoop.run()
        #expect(!harness.channel.isActive)
    }

    @Test("a filter that holds the request body sees it whole; the backend gets the filter's body with a length")
    func heldRequestBody() async throws {
        let harness = try await Harness()
        try harness.send("POST /held HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        #expect(harness.exchanges.isEmpty, "the backend waits for the whole body")
        let readsBefore = harness.reads.reads
        harness.channel.read()
        #expect(harness.reads.reads == readsBefore + 1, "reads go on while the body is held")
        try harness.send("3\r\ndef\r\n0\r\nX-Sum: 9\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        let exchange = try #require(harness.exchanges.first)
        #expect(exchange.body == "ABCDEF" && exchange.ended)
        #expect(exchange.request.head.headers["content-length"] == ["6"])
        #expect(!exchange.request.head.headers.contains(name: "transfer-encoding"))
        #expect(exchange.request.head.headers["x-trailer-sum"] == ["9"])
        #expect(exchange.request.heldBody == nil, "the body reaches the backend once, as its body")
        exchange.respond("held")
        let written = try harness.written()
        #expect(harness.statusLines(written) == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"], "the pipelined GET follows")
        #expect(written.hasSuffix("fixed"))
        _ = try? harness.channel.finish()
    }

    @Test("a held body over the filter's limit is a 413 that closes, by Content-Length at once or as it arrives")
    func heldRequestBodyOverLimit() async throws {
        let sized = try await Harness()
        try sized.send("POST /held HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n")
        var written = try sized.written()
        #expect(written.hasPrefix("HTTP/1.1 413 "))
        #expect(written.contains("the 8 bytes the route's filters can hold"))
        #expect(written.lowercased().contains("connection: close"))
        let chunked = try await Harness()
        try chunked.send("POST /held HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n")
        #expect(try chunked.written().isEmpty)
        try chunked.send("5\r\nfghij\r\n0\r\n\r\n")
        written = try chunked.written()
        #expect(written.hasPrefix("HTTP/1.1 413 "))
        #expect(chunked.exchanges.isEmpty, "the backend never saw the request")
    }

    @Test("a client that expects 100-continue gets it when the filter starts waiting for the body")
    func heldRequestBodyExpectContinue() async throws {
        let harness = try await Harness()
        try harness.send("POST /held HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        #expect(try harness.written().hasPrefix("HTTP/1.1 100 Continue\r\n"))
        try harness.send("xyz")
        let exchange = try #require(harness.exchanges.first)
        #expect(exchange.body == "XYZ" && exchange.ended)
        exchange.respond("ok")
        #expect(harness.statusLines(try harness.written()) == ["HTTP/1.1 200 OK"], "no second 100")
        _ = try? harness.channel.finish()
    }

    @Test("a request the decoder refuses gets a 400 problem document, then the connection closes")
    func malformedRequest() async throws {
        let harness = try await Harness()
        // The handler answers the decoder's error itself: nothing is left for the channel to throw.
        try harness.send("GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
        let written = try harness.written()
        #expect(written.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(written.contains("application/problem+json"))
        harness.channel.embeddedEventLoop.run()
        #expect(!harness.channel.isActive)
    }

    @Test("a parse error behind a response in progress waits its turn")
    func parseErrorBehindResponse() async throws {
        let harness = try await Harness()
        try? harness.send("GET /manual HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nBad Header: x\r\n\r\n")
        #expect(try harness.written().isEmpty)
        harness.exchanges[0].respond("first")
        let written = try harness.written()
        #expect(harness.statusLines(written) == ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"])
    }

    @Test("a shutdown closes an idle connection at once")
    func quiesceIdle() async throws {
        let harness = try await Harness()
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        harness.channel.embeddedEventLoop.run()
        #expect(!harness.channel.isActive)
    }

    @Test("a shutdown during an exchange: its response says Connection: close, then the connection closes")
    func quiesceBusy() async throws {
        let harness = try await Harness()
        try harness.send("GET /manual HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(harness.channel.isActive)
        harness.exchanges[0].respond("last")
        let written = try harness.written()
        #expect(harness.statusLines(written) == ["HTTP/1.1 200 OK"], "the pipelined request is not served")
        #expect(written.lowercased().contains("connection: close"))
        harness.channel.embeddedEventLoop.run()
        #expect(!harness.channel.isActive)
    }

    @Test("a half-close behind pipelined requests: every request is answered, then the connection closes")
    func halfClose() async throws {
        let harness = try await Harness()
        try harness.send("GET /manual HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(harness.channel.isActive)
        harness.exchanges[0].respond("first")
        let written = try harness.written()
        #expect(harness.statusLines(written).count == 2)
        harness.channel.embeddedEventLoop.run()
        #expect(!harness.channel.isActive)
    }

    @Test("Expect: 100-continue gets the interim response once the backend takes the body")
    func expectContinue() async throws {
        let harness = try await Harness()
        try harness.send("POST /manual HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        #expect(try harness.written() == "HTTP/1.1 100 Continue\r\n\r\n")
        try harness.send("abc")
        #expect(harness.exchanges[0].body == "abc")
        #expect(harness.exchanges[0].ended)
        harness.exchanges[0].respond("ok")
        #expect(harness.statusLines(try harness.written()) == ["HTTP/1.1 200 OK"])
        _ = try? harness.channel.finish()
    }

    @Test("a paused request body holds reads until it is resumed")
    func pausedBody() async throws {
        let harness = try await Harness()
        try harness.send("POST /manual HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabc")
        harness.exchanges[0].writer.pauseRequestBody()
        let readsBefore = harness.reads.reads
        harness.channel.read()
        #expect(harness.reads.reads == readsBefore)
        harness.exchanges[0].writer.resumeRequestBody()
        #expect(harness.reads.reads == readsBefore + 1)
        _ = try? harness.channel.finish()
    }

    @Test("a suspended filter holds reads; the body that came meanwhile reaches the backend when it resumes")
    func suspendedFilter() async throws {
        let harness = try await Harness()
        try harness.send("POST /suspended HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
        #expect(harness.exchanges.isEmpty, "the filter has not decided yet")
        let readsBefore = harness.reads.reads
        harness.channel.read()
        #expect(harness.reads.reads == readsBefore, "reads are held while the filter is suspended")
        harness.channel.embeddedEventLoop.advanceTime(by: .milliseconds(60))
        #expect(harness.exchanges.count == 1)
        #expect(harness.exchanges.first?.body == "abc")
        #expect(harness.exchanges.first?.ended == true)
        #expect(harness.exchanges.first?.request.head.headers.first(name: "x-seen-by") == "later")
        harness.exchanges[0].respond("done")
        let written = try harness.written()
        #expect(harness.statusLines(written) == ["HTTP/1.1 200 OK"])
        #expect(written.lowercased().contains("x-tag: later"))
        #expect(harness.reads.reads == readsBefore + 1, "the held read is released")
        _ = try? harness.channel.finish()
    }

    @Test("a body over the limit while a filter is suspended: 413, and the backend never sees the request")
    func bodyOverLimitWhileSuspended() async throws {
        let harness = try await Harness(halfCloses: true)
        try harness.send("POST /suspended HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        try harness.send("44c\r\n" + String(repeating: "x", count: 1100) + "\r\n")
        let written = try harness.written()
        #expect(written.hasPrefix("HTTP/1.1 413 "))
        #expect(harness.channel.isActive, "half-closed, lingering")
        harness.channel.embeddedEventLoop.advanceTime(by: .milliseconds(60))
        #expect(harness.exchanges.isEmpty, "the filter's late decision starts no backend")
        _ = try? harness.channel.finish()
    }

    @Test("a response head with a line break in a field is never written; the connection closes")
    func invalidResponseHead() async throws {
        let harness = try await Harness()
        try harness.send("GET /manual HTTP/1.1\r\nHost: a\r\n\r\n")
        harness.exchanges[0].respond("x", headers: ["x-evil": "a\r\nset-cookie: b"])
        #expect(!(try harness.written()).contains("set-cookie"))
        harness.channel.embeddedEventLoop.run()
        #expect(!harness.channel.isActive)
    }

    // MARK: Response framing, now that the handler writes the bytes (HTTP1ResponseEncoder)

    @Test("a HEAD response keeps the length a GET gets and sends no body; the next request is answered")
    func headResponse() async throws {
        let harness = try await Harness()
        try harness.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        let written = try harness.written()
        let responses = written.components(separatedBy: "HTTP/1.1 200 OK\r\n").dropFirst()
        #expect(responses.count == 2, "\(written)")
        let head = try #require(responses.first)
        #expect(head.lowercased().contains("content-length: 5\r\n"))
        #expect(head.hasSuffix("\r\n\r\n"), "no body bytes after the HEAD response's head")
        #expect(responses.last?.hasSuffix("\r\n\r\nfixed") == true)
        #expect(harness.channel.isActive)
        _ = try? harness.channel.finish()
    }

    @Test("a response without a length goes out chunked, each body part a chunk, then the last chunk")
    func chunkedWhenLengthUnknown() async throws {
        let harness = try await Harness()
        try harness.send("GET /manual HTTP/1.1\r\nHost: a\r\n\r\n")
        let writer = harness.exchanges[0].writer
        writer.writeHead(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-type": "text/plain"]))
        writer.queueBody(ByteBuffer(string: "hello"))
        _ = writer.writeBody(ByteBuffer(string: ""))
        _ = writer.writeBody(ByteBuffer(string: String(repeating: "x", count: 26)))
        writer.writeEnd()
        let written = try harness.written()
        #expect(written.hasPrefix("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-request-id: "))
        #expect(
            written.hasSuffix(
                "transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n1a\r\n\(String(repeating: "x", count: 26))\r\n0\r\n\r\n"
            )
        )
        try harness.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(harness.statusLines(try harness.written()) == ["HTTP/1.1 200 OK"])
        _ = try? harness.channel.finish()
    }

    @Test("204 and 304 lose Content-Length and Transfer-Encoding, send no body, and keep the connection")
    func noBodyStatuses() async throws {
        let harness = try await Harness()
        for (index, status) in [HTTPResponseStatus.noContent, .notModified].enumerated() {
            try harness.send("GET /manual HTTP/1.1\r\nHost: a\r\n\r\n")
            let writer = harness.exchanges[index].writer
            writer.writeHead(
                HTTPResponseHead(
                    version: .http1_1,
                    status: status,
                    headers: ["content-length": "3", "transfer-encoding": "chunked", "etag": "\"e\""]
                )
            )
            writer.queueBody(ByteBuffer(string: "abc"))
            writer.writeEnd()
            let written = try harness.written()
            #expect(written.hasPrefix("HTTP/1.1 \(status.code) "))
            #expect(!written.lowercased().contains("content-length"))
            #expect(!written.lowercased().contains("transfer-encoding"))
            #expect(written.contains("etag: \"e\"\r\n"))
            #expect(written.hasSuffix("\r\n\r\n"), "no body bytes")
            #expect(harness.channel.isActive)
        }
        _ = try? harness.channel.finish()
    }

    @Test("HTTP/1.0 keep-alive with a response of unknown length: no chunking, Connection: close, then closed")
    func http10CloseDelimited() async throws {
        let harness = try await Harness()
        try harness.send("GET /manual HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        let writer = harness.exchanges[0].writer
        writer.writeHead(HTTPResponseHead(version: .http1_1, status: .ok))
        writer.queueBody(ByteBuffer(string: "abc"))
        writer.writeEnd()
        let written = try harness.written()
        #expect(written.hasPrefix("HTTP/1.0 200 OK\r\n"))
        #expect(written.lowercased().contains("connection: close\r\n"))
        #expect(!written.lowercased().contains("transfer-encoding"))
        #expect(written.hasSuffix("\r\n\r\nabc"))
        try harness.send("GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        #expect(harness.statusLines(try harness.written()).isEmpty, "nothing more is served")
        _ = try? harness.channel.finish()
    }

    @Test("pipelined GET, HEAD and POST in one read: three answers in order, the HEAD's without body")
    func pipelinedMixedMethods() async throws {
        let harness = try await Harness()
        try harness.send(
            "GET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
                + "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        let written = try harness.written()
        let responses = Array(written.components(separatedBy: "HTTP/1.1 200 OK\r\n").dropFirst())
        #expect(responses.count == 4, "\(written)")
        #expect(responses.count == 4 && responses[0].hasSuffix("\r\n\r\nfixed"))
        #expect(responses.count == 4 && responses[1].hasSuffix("\r\n\r\n"))
        #expect(responses.count == 4 && responses[2].hasSuffix("\r\n\r\nfixed"))
        #expect(responses.count == 4 && responses[3].hasSuffix("\r\n\r\nfixed"))
        #expect(harness.channel.isActive)
        _ = try? harness.channel.finish()
    }

    /// The response parts written on an HTTP/2 stream harness.
    private func responseParts(_ harness: Harness) throws -> [HTTPServerResponsePart] {
        var parts: [HTTPServerResponsePart] = []
        while let part = try harness.channel.readOutbound(as: HTTPServerResponsePart.self) { parts.append(part) }
        return parts
    }

    @Test("an HTTP/2 stream: connection-specific fields are dropped, never Connection: close, no upgrade")
    func http2Stream() async throws {
        let harness = try await Harness(http2: true)
        var head = HTTPRequestHead(version: .http2, method: .GET, uri: "/manual")
        head.headers.add(name: "host", value: "a")
        try harness.channel.writeInbound(HTTPServerRequestPart.head(head))
        try harness.channel.writeInbound(HTTPServerRequestPart.end(nil))
        #expect(harness.exchanges.first?.writer.canUpgrade == false)
        harness.exchanges[0].respond("h2", headers: ["connection": "keep-alive", "keep-alive": "timeout=5"])
        let parts = try self.responseParts(harness)
        guard case .head(let response) = parts.first else {
            Issue.record("no response head: \(parts)")
            return
        }
        #expect(response.status == .ok)
        #expect(!response.headers.contains(name: "connection"))
        #expect(!response.headers.contains(name: "keep-alive"))
        #expect(response.headers.contains(name: "x-request-id"))
        #expect(harness.channel.isActive)
        _ = try? harness.channel.finish()
    }

    @Test("an HTTP/2 stream with a body over the limit gets 413 and only the stream ends")
    func http2BodyOverLimit() async throws {
        let harness = try await Harness(maxBodyBytes: 4, http2: true)
        var head = HTTPRequestHead(version: .http2, method: .POST, uri: "/manual")
        head.headers.add(name: "host", value: "a")
        try harness.channel.writeInbound(HTTPServerRequestPart.head(head))
        try harness.channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "abcdef")))
        let parts = try self.responseParts(harness)
        guard case .head(let response) = parts.first else {
            Issue.record("no response head: \(parts)")
            return
        }
        #expect(response.status == .payloadTooLarge)
        #expect(!response.headers.contains(name: "connection"), "no Connection field on HTTP/2")
        #expect(harness.exchanges.first?.cancelled == true)
        harness.channel.embeddedEventLoop.run()
        #expect(!harness.channel.isActive, "the stream is closed, without a lingering close")
    }

    @Test("an upgrade sends the 101, removes HTTP from the pipeline and hands the channel over")
    func upgrade() async throws {
        let harness = try await Harness()
        try harness.send("GET /manual HTTP/1.1\r\nHost: a\r\nUpgrade: test\r\nConnection: upgrade\r\n\r\n")
        var handedOver = false
        let accepted = harness.exchanges[0].writer.upgrade(
            HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: ["upgrade": "test"])
        ) { _ in handedOver = true }
        #expect(accepted && handedOver)
        #expect(try harness.written().hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        harness.channel.embeddedEventLoop.run()
        #expect(throws: (any Error).self) {
            try harness.channel.pipeline.syncOperations.handler(type: GatewayHTTPHandler.self)
        }
        #expect(throws: (any Error).self) {
            try harness.channel.pipeline.syncOperations.handler(type: HTTP1RequestDecodingHandler.self)
        }
        try harness.send("raw bytes")
        #expect(try harness.channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "raw bytes")
        _ = try? harness.channel.finish()
    }
}
