import HTTP1Codec
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import HTTPProxyPlugin

/// The http-proxy's upstream connection handler with its own response decoder: parts go to the
/// exchange by a direct call, a refusal closes the connection with its reason, a body read
/// until the close ends with the close, and after a 101 the bytes behind its head reach the
/// handler that takes the connection over.
@Suite("http-proxy upstream connection handler: responses decoded in place, refusals, close, 101 leftovers")
struct UpstreamConnectionHandlerTests {
    /// A channel with the handler, told of `requests` (true: a HEAD), and the recorder behind it.
    static func channel(
        requests: [Bool] = [false]
    ) throws -> (EmbeddedChannel, UpstreamConnectionHandler, ResponsePartRecorder) {
        let channel = EmbeddedChannel()
        let handler = UpstreamConnectionHandler()
        let recorder = ResponsePartRecorder()
        handler.delegate = recorder
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        for toHEAD in requests { handler.expectResponse(toHEAD: toHEAD) }
        return (channel, handler, recorder)
    }

    @Test("a response in pieces: interim responses are not relayed, body parts and the end are")
    func response() throws {
        let (channel, handler, recorder) = try Self.channel()
        defer { _ = try? channel.finish() }
        let pieces = [
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-", "Encoding: chunked\r\n\r\n3\r\nab",
            "c\r\n0\r\n\r\n",
        ]
        for piece in pieces {
            try channel.writeInbound(ByteBuffer(string: piece))
        }
        #expect(recorder.parts == ["head 200", "body ab", "body c", "end"])
        #expect(handler.responseKeepsConnection)
        #expect(channel.isActive)
    }

    @Test("a malformed response closes the connection; the exchange gets the parse error as the cause")
    func refusal() throws {
        let (channel, _, recorder) = try Self.channel()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n"))
        #expect(!channel.isActive)
        #expect(recorder.parts.isEmpty)
        let error = try #require(recorder.closedWith as? HTTP1ParseError)
        #expect("\(error)".contains("obsolete line folding"))
    }

    @Test("a body read until the close ends when the upstream closes; one cut short is an error")
    func closeDelimited() throws {
        let (channel, handler, recorder) = try Self.channel()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.0 200 OK\r\n\r\nall of it"))
        #expect(recorder.parts == ["head 200", "body all of it"])
        #expect(!handler.responseKeepsConnection)
        channel.pipeline.fireChannelInactive()
        #expect(recorder.parts == ["head 200", "body all of it", "end"])

        let (cut, _, cutRecorder) = try Self.channel()
        try cut.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nsome"))
        cut.pipeline.fireChannelInactive()
        #expect(cutRecorder.parts == ["head 200", "body some"])
        let error = try #require(cutRecorder.closedWith as? HTTP1ParseError)
        #expect("\(error)".contains("middle of a response"))
    }

    @Test("bytes while no request waits close the connection (a pooled connection the upstream talks on)")
    func unexpectedBytes() throws {
        let (channel, handler, recorder) = try Self.channel(requests: [])
        handler.delegate = nil
        var closed = false
        handler.onIdleClose = { closed = true }
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n"))
        #expect(!channel.isActive)
        #expect(closed)
        #expect(recorder.parts.isEmpty)
    }

    @Test("after a 101, the bytes behind its head go to the handler that takes over, in order, once")
    func switchingProtocolsLeftover() throws {
        let (channel, handler, recorder) = try Self.channel()
        defer { _ = try? channel.finish() }
        let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: head + "first"))
        try channel.writeInbound(ByteBuffer(string: " second"))
        #expect(recorder.parts == ["head 101"])
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil, "nothing passes while the handler is in place")
        // As the exchange does: the tunnel's handler goes in behind, then this one comes out.
        handler.delegate = nil
        try channel.pipeline.syncOperations.removeHandler(handler).wait()
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "first second"))
        try channel.writeInbound(ByteBuffer(string: "third"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "third"))
    }
}
