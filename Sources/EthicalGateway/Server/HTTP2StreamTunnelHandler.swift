import NIOCore
import NIOHTTP2

/// An HTTP/2 stream that became a WebSocket (RFC 8441 extended CONNECT) as a stream of bytes,
/// so the WebSocket layer and ``ByteTunnel`` run on it as on a TCP connection: the stream's
/// DATA frames are read as `ByteBuffer`s and bytes written go out as DATA frames.
///
/// Closing follows RFC 8441 section 5, where END_STREAM plays TCP's FIN and RST_STREAM(CANCEL)
/// an abortive close: the client's END_STREAM is passed on as `ChannelEvent.inputClosed`; a
/// close from this side sends END_STREAM and leaves the stream to end with the client's
/// END_STREAM, resetting it with CANCEL only when the client has not ended it within
/// ``endStreamGrace``.
final class HTTP2StreamTunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// How long a stream this side ended waits for the client's END_STREAM before it is reset.
    static let endStreamGrace = TimeAmount.seconds(Int64(5))

    private var inputEnded = false
    private var outputEnded = false
    private var graceTimer: Scheduled<Void>?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .data(let payload):
            if case .byteBuffer(let bytes) = payload.data, bytes.readableBytes > 0 {
                context.fireChannelRead(self.wrapInboundOut(bytes))
            }
            if payload.endStream { self.receivedEndStream(context: context) }
        case .headers(let trailers):
            // Trailers carry nothing for a WebSocket; only their END_STREAM counts.
            if trailers.endStream { self.receivedEndStream(context: context) }
        default:
            break
        }
    }

    private func receivedEndStream(context: ChannelHandlerContext) {
        guard !self.inputEnded else { return }
        self.inputEnded = true
        // With both sides ended the stream is closed by NIO; otherwise the application decides.
        if !self.outputEnded { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = self.unwrapOutboundIn(data)
        context.write(self.wrapOutboundOut(.data(.init(data: .byteBuffer(bytes)))), promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode != .input, context.channel.isActive else {
            context.close(mode: mode, promise: promise)
            return
        }
        if !self.outputEnded {
            self.outputEnded = true
            let end = HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))
            context.writeAndFlush(self.wrapOutboundOut(end), promise: nil)
        }
        if mode == .output {
            promise?.succeed()
            return
        }
        context.channel.closeFuture.cascade(to: promise)
        // After both END_STREAMs the stream closes itself; a client that never ends it is reset.
        guard !self.inputEnded, self.graceTimer == nil else { return }
        self.graceTimer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.endStreamGrace) {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.graceTimer?.cancel()
        self.graceTimer = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.graceTimer?.cancel()
        self.graceTimer = nil
    }
}

@available(*, unavailable)
extension HTTP2StreamTunnelHandler: Sendable {}
