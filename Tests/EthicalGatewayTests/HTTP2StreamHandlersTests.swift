import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing

@testable import EthicalGateway

/// The handlers of an HTTP/2 stream that a WebSocket (RFC 8441) passes through, on an
/// `EmbeddedChannel`: the head guard reading an extended CONNECT, and the tunnel the stream
/// becomes after the `200`. The live side is `WebSocketHTTP2Tests`.
@Suite("HTTP/2 stream handlers for WebSocket on an EmbeddedChannel")
struct HTTP2StreamHandlersTests {
    /// Counts the `inputClosed` events that reach the end of the pipeline.
    final class InputClosedCounter: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var count = 0

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.fireChannelRead(data)
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case ChannelEvent.inputClosed = event { self.count += 1 }
        }
    }

    static func active(_ handlers: [any ChannelHandler]) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handlers: handlers)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        return channel
    }

    static func data(_ text: String, endStream: Bool = false) -> HTTP2Frame.FramePayload {
        .data(.init(data: .byteBuffer(ByteBuffer(string: text)), endStream: endStream))
    }

    @Test("the tunnel reads DATA as bytes, passes END_STREAM on as inputClosed, and writes bytes as DATA")
    func tunnelBytes() throws {
        let counter = InputClosedCounter()
        let channel = try Self.active([HTTP2StreamTunnelHandler(), counter])
        try channel.writeInbound(Self.data("abc"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "abc"))
        try channel.writeInbound(Self.data("", endStream: true))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        #expect(counter.count == 1)
        try channel.writeOutbound(ByteBuffer(string: "xyz"))
        guard case .data(let frame) = try channel.readOutbound(as: HTTP2Frame.FramePayload.self),
            case .byteBuffer(let bytes) = frame.data
        else {
            Issue.record("no DATA written")
            return
        }
        #expect(bytes == ByteBuffer(string: "xyz"))
        #expect(!frame.endStream)
        // Both sides ended: closing sends END_STREAM and arms no reset (NIO closes such a stream).
        channel.close(promise: nil)
        guard case .data(let end) = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) else {
            Issue.record("no END_STREAM written")
            return
        }
        #expect(end.endStream)
        channel.embeddedEventLoop.advanceTime(by: HTTP2StreamTunnelHandler.endStreamGrace)
        #expect(channel.isActive)
    }

    @Test(
        "closing the tunnel sends END_STREAM and waits for the client's; without it the stream is reset after the grace"
    )
    func tunnelClose() throws {
        let counter = InputClosedCounter()
        let channel = try Self.active([HTTP2StreamTunnelHandler(), counter])
        channel.close(promise: nil)
        guard case .data(let end) = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) else {
            Issue.record("no END_STREAM written")
            return
        }
        #expect(end.endStream && end.data.readableBytes == 0)
        #expect(channel.isActive)
        // A second close while waiting sends nothing more.
        channel.close(promise: nil)
        #expect(try channel.readOutbound(as: HTTP2Frame.FramePayload.self) == nil)
        channel.embeddedEventLoop.advanceTime(by: HTTP2StreamTunnelHandler.endStreamGrace - .milliseconds(1))
        #expect(channel.isActive)
        // The client's END_STREAM after ours is not an inputClosed to act on: the stream is done.
        try channel.writeInbound(Self.data("", endStream: true))
        #expect(counter.count == 0)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    @Test(
        "the head guard rewrites an extended CONNECT and marks the stream; another :protocol is answered 501 and reset"
    )
    func headGuard() throws {
        let accepting = HTTP2RequestHeadGuard()
        let channel = try Self.active([accepting])
        let opening = HPACKHeaders([
            (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/ws"),
            (":authority", "example.com"), ("sec-websocket-version", "13"),
        ])
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: opening)))
        guard case .headers(let passed) = try channel.readInbound(as: HTTP2Frame.FramePayload.self) else {
            Issue.record("the opening was not passed on")
            return
        }
        #expect(passed.headers[":method"] == ["GET"])
        #expect(passed.headers["upgrade"] == ["websocket"])
        #expect(accepting.isWebSocketRequest)

        let refusing = HTTP2RequestHeadGuard()
        let other = try Self.active([refusing])
        var unknown = opening
        unknown.replaceOrAdd(name: ":protocol", value: "webtransport")
        try other.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: unknown)))
        #expect(try other.readInbound(as: HTTP2Frame.FramePayload.self) == nil)
        #expect(!refusing.isWebSocketRequest)
        other.embeddedEventLoop.run()
        guard case .headers(let answer) = try other.readOutbound(as: HTTP2Frame.FramePayload.self),
            case .data(let body) = try other.readOutbound(as: HTTP2Frame.FramePayload.self),
            case .rstStream(let code) = try other.readOutbound(as: HTTP2Frame.FramePayload.self)
        else {
            Issue.record("no 501, problem document and reset")
            return
        }
        #expect(answer.headers[":status"] == ["501"])
        #expect(answer.headers["content-type"] == ["application/problem+json"])
        #expect(body.endStream)
        if case .byteBuffer(let bytes) = body.data {
            #expect(String(buffer: bytes).contains("webtransport"))
        }
        #expect(code == .noError)
        #expect(!other.isActive)
    }
}
