import NIOCore
import NIOHTTP1
import NIOHTTP2

/// NIO's `HTTP2FramePayloadToHTTP1ServerCodec` (an HTTP/2 stream's frames as HTTP/1-style
/// request and response parts), in a handler the gateway can take out of the stream's
/// pipeline: NIO's own is not removable, and a stream that becomes a WebSocket (RFC 8441)
/// stops speaking HTTP after its `200` (``HTTP2StreamTunnelHandler`` takes over).
final class HTTP2ServerStreamCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let codec = HTTP2FramePayloadToHTTP1ServerCodec()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.codec.channelRead(context: context, data: data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        self.codec.write(context: context, data: data, promise: promise)
    }
}

@available(*, unavailable)
extension HTTP2ServerStreamCodec: Sendable {}
