public import NIOCore
public import NIOWebSocket

/// The WebSocket layer between NIO's frame codec and an application handler: reads frames
/// through a ``WebSocketMessageAssembler`` and passes whole ``WebSocketMessage``s on; answers
/// pings; runs the close handshake; fails the connection with the right close code when the
/// client breaks the protocol. On the way out, whole data frames are compressed when
/// permessage-deflate was negotiated and the handler was asked to compress.
///
/// After a close frame was sent or received, further data frames from the peer are dropped.
public final class WebSocketMessageHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = WebSocketFrame
    public typealias InboundOut = WebSocketMessage
    public typealias OutboundIn = WebSocketFrame
    public typealias OutboundOut = WebSocketFrame

    private enum State {
        case open
        /// This side sent a close frame and waits for the peer's.
        case closeSent
        /// The close handshake is over or the connection failed: the socket is closing.
        case closed
    }

    private var state = State.open
    /// A pong was written during this read burst and waits for the flush at its end.
    private var pongPending = false
    private var assembler: WebSocketMessageAssembler
    private let compressor: DeflateCompressor?

    /// - Parameters:
    ///   - maxMessageBytes: the largest message accepted (after inflating); larger ones close with 1009.
    ///   - deflate: the negotiated permessage-deflate, if any.
    ///   - compressOutbound: compress the data frames written through this handler (needs `deflate`).
    public init(maxMessageBytes: Int, deflate: PerMessageDeflate?, compressOutbound: Bool) {
        self.assembler = WebSocketMessageAssembler(maxMessageBytes: maxMessageBytes, deflate: deflate)
        if let deflate, compressOutbound {
            self.compressor = DeflateCompressor(
                windowBits: deflate.serverMaxWindowBits,
                noContextTakeover: deflate.serverNoContextTakeover
            )
        } else {
            self.compressor = nil
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        guard self.state != .closed else { return }
        switch self.assembler.receive(frame, allocator: context.channel.allocator) {
        case .none:
            break
        case .message(let message):
            guard self.state == .open else { return }
            context.fireChannelRead(self.wrapInboundOut(message))
        case .ping(let data):
            guard self.state == .open else { return }
            context.write(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: data)), promise: nil)
            self.pongPending = true
        case .pong:
            break
        case .close(let code, _):
            if self.state == .open {
                // Echo the peer's code (RFC 6455 §5.5.1); with none, close with an empty body.
                var payload = context.channel.allocator.buffer(capacity: 2)
                if let code { payload.writeInteger(code) }
                let reply = WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)
                self.state = .closed
                let channel = context.channel
                context.writeAndFlush(self.wrapOutboundOut(reply)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                self.state = .closed
                context.close(promise: nil)
            }
        case .fail(let code, let reason):
            self.fail(context: context, code: code, reason: reason)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if self.pongPending {
            self.pongPending = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    /// Sends a close frame with `code` and closes the socket once it is written.
    private func fail(context: ChannelHandlerContext, code: WebSocketErrorCode, reason: String) {
        let wasOpen = self.state == .open
        self.state = .closed
        guard wasOpen else {
            context.close(promise: nil)
            return
        }
        let frame = WebSocketCloseCode.frame(code: code, reason: reason, allocator: context.channel.allocator)
        let channel = context.channel
        context.writeAndFlush(self.wrapOutboundOut(frame)).whenComplete { _ in channel.close(promise: nil) }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var frame = self.unwrapOutboundIn(data)
        switch frame.opcode {
        case .connectionClose:
            if self.state == .open { self.state = .closeSent }
        case .text, .binary:
            if let compressor = self.compressor, frame.fin, !frame.rsv1 {
                frame = WebSocketFrame(
                    fin: true,
                    rsv1: true,
                    opcode: frame.opcode,
                    data: compressor.compress(frame.data, allocator: context.channel.allocator)
                )
            }
        default:
            break
        }
        context.write(self.wrapOutboundOut(frame), promise: promise)
    }
}

@available(*, unavailable)
extension WebSocketMessageHandler: Sendable {}
