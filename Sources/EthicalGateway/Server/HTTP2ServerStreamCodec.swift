import NIOCore
import NIOHTTP1
import NIOHTTP2

/// NIO's `HTTP2FramePayloadToHTTP1ServerCodec` (an HTTP/2 stream's frames as HTTP/1-style
/// request and response parts), in a handler the gateway can take out of the stream's
/// pipeline: NIO's own is not removable, and a stream that becomes a WebSocket (RFC 8441)
/// stops speaking HTTP after its `200` (``HTTP2StreamTunnelHandler`` takes over). Response
/// heads get the gateway's own header block (``HTTP2ResponseHeaders``).
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
        // NIO's codec turns response parts into frames without state, so the head can take
        // the gateway's own header block (see ``HTTP2ResponseHeaders``).
        if case .head(let head) = self.unwrapOutboundIn(data) {
            context.write(
                self.wrapOutboundOut(.headers(.init(headers: HTTP2ResponseHeaders.make(head)))),
                promise: promise
            )
            return
        }
        self.codec.write(context: context, data: data, promise: promise)
    }
}

@available(*, unavailable)
extension HTTP2ServerStreamCodec: Sendable {}
