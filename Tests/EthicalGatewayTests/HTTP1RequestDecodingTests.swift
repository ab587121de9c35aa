import HTTP1Codec
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import EthicalGateway

/// The gateway's own HTTP/1.1 request decoding (``HTTP1RequestDecodingHandler``) on an
/// `EmbeddedChannel`: alone, with a handler behind it that records the request parts, and
/// in front of ``GatewayHTTPHandler`` as a listener builds it (the bytes a client sends, the
/// answers it gets, whether the connection stays open).
@Suite("HTTP/1.1 request decoding on an EmbeddedChannel")
struct HTTP1RequestDecodingTests {
    typealias Harness = GatewayHTTPHandlerEmbeddedTests.Harness

    /// Records the request parts that reach it, the errors fired at it and the half-close.
    final class Recorder: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        var parts: [String] = []
        var errors: [any Error] = []
        var inputClosed = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head): self.parts.append("head \(head.method.rawValue) \(head.uri)")
            case .body(let body): self.parts.append("body \(String(buffer: body))")
            case .end(let trailers):
                let fields = trailers.map { " " + $0.map { "\($0.name)=\($0.value)" }.joined(separator: ",") }
                self.parts.append("end" + (fields ?? ""))
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.errors.append(error)
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? ChannelEvent, event == .inputClosed { self.inputClosed = true }
        }
    }

    /// What a protocol that replaces HTTP gets: bytes, and the half-close.
    final class BytesRecorder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var bytes = ""
        var inputClosed = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            self.bytes += String(buffer: self.unwrapInboundIn(data))
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? ChannelEvent, event == .inputClosed { self.inputClosed = true }
        }
    }

    /// The decoder alone, with a recorder behind it.
    static func decoderChannel() throws -> (EmbeddedChannel, HTTP1RequestDecodingHandler, Recorder) {
        let channel = EmbeddedChannel()
        let decoder = HTTP1RequestDecodingHandler(limits: RequestLimits())
        let recorder = Recorder()
        try channel.pipeline.syncOperations.addHandler(decoder)
        try channel.pipeline.syncOperations.addHandler(recorder)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return (channel, decoder, recorder)
    }

    @Test("one request at a time: the next is decoded only when the exchange is over")
    func oneAtATime() throws {
        let (channel, decoder, recorder) = try Self.decoderChannel()
        try channel.writeInbound(
            ByteBuffer(
                string:
                    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c"
            )
        )
        #expect(recorder.parts == ["head POST /a", "body hi", "end"])
        decoder.awaitNextHead()
        #expect(recorder.parts.suffix(2) == ["head GET /b", "end"])
        decoder.awaitNextHead()
        #expect(recorder.parts.count == 5, "the third head is not complete")
        try channel.writeInbound(ByteBuffer(string: " HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(recorder.parts.suffix(2) == ["head GET /c", "end"])
        _ = try? channel.finish()
    }

    @Test("chunked with extensions and trailers: the body parts, then the end with the trailers")
    func chunkedTrailers() throws {
        let (channel, _, recorder) = try Self.decoderChannel()
        let text =
            "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "3;ext=1\r\nabc\r\n2;a;b=\"c\"\r\nde\r\n0\r\nX-Sum: 5\r\nX-Note: done\r\n\r\n"
        for byte in text.utf8 { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        #expect(recorder.parts.first == "head POST /up")
        #expect(recorder.parts.dropFirst().dropLast().map { $0.dropFirst(5) }.joined() == "abcde")
        #expect(recorder.parts.last == "end X-Sum=5,X-Note=done")
        _ = try? channel.finish()
    }

    @Test("the bytes after an upgrade's head go to the handlers that replace HTTP, with the half-close")
    func upgradeLeftovers() throws {
        let (channel, decoder, recorder) = try Self.decoderChannel()
        try channel.writeInbound(
            ByteBuffer(
                string: "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n\u{81}\u{0}frame"
            )
        )
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(recorder.parts == ["head GET /ws", "end"])
        #expect(!recorder.inputClosed, "the half-close waits behind the bytes before it")
        // As an upgrade does: HTTP's handler out, the new protocol's in, then the decoder out.
        try channel.pipeline.syncOperations.removeHandler(recorder).wait()
        let newProtocol = BytesRecorder()
        try channel.pipeline.syncOperations.addHandler(newProtocol)
        try channel.pipeline.syncOperations.removeHandler(decoder).wait()
        #expect(newProtocol.bytes == "\u{81}\u{0}frame")
        #expect(newProtocol.inputClosed)
        _ = try? channel.finish()
    }

    @Test("a half-close in the middle of a body is an error; between requests it is passed on")
    func halfClose() throws {
        let (channel, decoder, recorder) = try Self.decoderChannel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n"))
        decoder.awaitNextHead()
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(recorder.inputClosed && recorder.errors.isEmpty)

        let (cut, _, cutRecorder) = try Self.decoderChannel()
        try cut.writeInbound(ByteBuffer(string: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"))
        cut.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(!cutRecorder.inputClosed)
        #expect((cutRecorder.errors.first as? HTTP1ParseError)?.status == 400)
        _ = try? channel.finish()
        _ = try? cut.finish()
    }

    @Test("a head split byte by byte, its body too: the backend gets the request whole")
    func splitByteByByte() async throws {
        let harness = try await Harness()
        for byte in "POST /manual HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world".utf8 {
            try harness.channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        #expect(harness.exchanges.count == 1)
        #expect(harness.exchanges.first?.request.head.uri == "/manual")
        #expect(harness.exchanges.first?.body == "hello world")
        #expect(harness.exchanges.first?.ended == true)
        harness.exchanges[0].respond("ok")
        #expect(harness.statusLines(try harness.written()) == ["HTTP/1.1 200 OK"])
        #expect(harness.channel.isActive)
        _ = try? harness.channel.finish()
    }

    @Test("pipelined heads and bodies in one read: each request with its own body, answered in order")
    func pipelinedBodies() async throws {
        let harness = try await Harness()
        try harness.send(
            "POST /manual/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\none"
                + "POST /manual/2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\ntwo\r\n0\r\nT: 1\r\n\r\n"
                + "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        #expect(harness.exchanges.count == 1)
        #expect(harness.exchanges[0].body == "one" && harness.exchanges[0].ended)
        harness.exchanges[0].respond("first")
        #expect(harness.exchanges.count == 2)
        #expect(harness.exchanges[1].body == "two" && harness.exchanges[1].ended)
        harness.exchanges[1].respond("second")
        let written = try harness.written()
        #expect(harness.statusLines(written) == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK"])
        #expect(written.hasSuffix("fixed"))
        #expect(harness.channel.isActive)
        _ = try? harness.channel.finish()
    }

    @Test("an upgrade's leftover bytes reach the new protocol through the full pipeline")
    func upgradeThroughGateway() async throws {
        let harness = try await Harness()
        try harness.send("GET /manual HTTP/1.1\r\nHost: a\r\nUpgrade: test\r\nConnection: upgrade\r\n\r\nearly bytes")
        let accepted = harness.exchanges[0].writer.upgrade(
            HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: ["upgrade": "test"])
        ) { _ in }
        #expect(accepted)
        #expect(try harness.written().hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        #expect(try harness.channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "early bytes")
        _ = try? harness.channel.finish()
    }

    @Test(
        "every refusal is answered with its status and reason, then the connection closes",
        arguments: [
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, "obsolete line folding"),
            ("GET / HTTP/1.1\nHost: a\n\n", 400, "line feed alone"),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\rY: b\r\n\r\n", 400, "carriage return"),
            ("GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n", 400, "whitespace between"),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", 400, "control character"),
            ("GET / HTTP/1.1\r\nHost: a\r\nX\u{1}: b\r\n\r\n", 400, "not allowed in a token"),
            ("GET /a\u{1}b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "request target"),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both"),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400, "more than one"),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", 400, "decimal"),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, "final transfer coding"),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "implements is chunked"),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"),
            ("GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1"),
            (
                "POST /manual HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n", 400,
                "chunk size"
            ),
            ("POST /manual HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", 400, "CRLF"),
            (
                "POST /manual HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", 400,
                "folding"
            ),
        ]
    )
    func refusals(request: String, status: Int, reason: String) async throws {
        let harness = try await Harness()
        try harness.send(request)
        let written = try harness.written()
        #expect(written.hasPrefix("HTTP/1.1 \(status) "), "\(request.debugDescription): \(written.prefix(80))")
        #expect(written.lowercased().contains("connection: close"))
        #expect(written.contains("application/problem+json"))
        #expect(written.contains(reason), "\(request.debugDescription): \(written)")
        harness.channel.embeddedEventLoop.run()
        #expect(!harness.channel.isActive, "\(request.debugDescription)")
        if request.hasPrefix("POST /manual") {
            #expect(harness.exchanges.first?.ended == false, "the backend never takes a broken body as complete")
        }
    }

    @Test("Host problems are answered 400 and keep the connection: the framing is sound")
    func hostRefusalsKeepConnection() async throws {
        let harness = try await Harness()
        for request in [
            "GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            try harness.send(request)
            #expect(harness.statusLines(try harness.written()) == ["HTTP/1.1 400 Bad Request"], "\(request)")
            #expect(harness.channel.isActive)
        }
        try harness.send("GET  / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(harness.statusLines(try harness.written()) == ["HTTP/1.1 200 OK"], "spaces after the method")
        _ = try? harness.channel.finish()
    }

    @Test("a head over the limits gets 431 on the raw connection, which closes")
    func headTooLarge() async throws {
        let harness = try await Harness()
        let limit = RequestLimits().maxHeadBytes
        try harness.send("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "a", count: limit))
        let written = try harness.written()
        #expect(written.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
        #expect(written.contains("larger than the \(limit) bytes"))
        harness.channel.embeddedEventLoop.run()
        #expect(!harness.channel.isActive)
    }

    @Test("a head not complete within the header-read timeout gets 408; a connection between requests does not")
    func headerReadTimeout() async throws {
        let harness = try await Harness()
        try harness.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(harness.statusLines(try harness.written()) == ["HTTP/1.1 200 OK"])
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(Int64(30)))
        #expect(try harness.written().isEmpty, "idle between requests: no 408")
        #expect(harness.channel.isActive)
        try harness.send("GET / HTTP/1.1\r\nHo")
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(Int64(11)))
        let written = try harness.written()
        #expect(written.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(written.contains("header-read timeout"))
        #expect(!harness.channel.isActive)
    }

    @Test("a pipelined head behind a slow response is not timed until the response is written")
    func pipelinedHeadNotTimed() async throws {
        let harness = try await Harness()
        try harness.send("GET /manual HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHo")
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(Int64(30)))
        #expect(try harness.written().isEmpty)
        #expect(harness.channel.isActive)
        harness.exchanges[0].respond("slow")
        try harness.send("st: a\r\n\r\n")
        #expect(harness.statusLines(try harness.written()) == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"])
        _ = try? harness.channel.finish()
    }
}

extension HTTP1RequestDecodingTests {
    @Test("while a response is due, a read passes until bytes of a next request arrive, then it is held")
    func readsHeldOnlyWithPipelinedBytes() async throws {
        let harness = try await Harness()
        try harness.send("GET /manual HTTP/1.1\r\nHost: a\r\n\r\n")
        var reads = harness.reads.reads
        harness.channel.read()
        #expect(harness.reads.reads == reads + 1, "nothing waits: the read goes to the socket")
        try harness.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(harness.exchanges.count == 1, "the next request waits in the decoder")
        reads = harness.reads.reads
        harness.channel.read()
        #expect(harness.reads.reads == reads, "a next request waits: reads are held")
        harness.exchanges[0].respond("first")
        #expect(harness.statusLines(try harness.written()) == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"])
        #expect(harness.reads.reads == reads + 1, "the held read is released")
        _ = try? harness.channel.finish()
    }
}
