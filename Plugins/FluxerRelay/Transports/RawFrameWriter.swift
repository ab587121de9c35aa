import NIOCore

/// Writes WebSocket frames the relay encoded itself straight towards the socket, past the
/// WebSocket encoder: a publication is framed once and every subscriber on every event loop
/// writes the same bytes, with no per-subscriber header buffer or handler traversal.
///
/// Sits on the socket side of `WebSocketFrameEncoder`; what the encoder writes passes through.
final class RawFrameWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Writes a whole frame (see ``Push/frame(_:)``); call on the channel's event loop.
    func write(frame: ByteBuffer) {
        self.context?.write(self.wrapOutboundOut(frame), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }
}

/// Confined to its channel's event loop, like the connection that uses it.
extension RawFrameWriter: @unchecked Sendable {}
