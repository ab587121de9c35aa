import NIOCore

/// Writes WebSocket frames the relay encoded itself straight towards the socket, past the
/// WebSocket encoder: a publication is framed once and every subscriber on every event loop
/// writes the same bytes, with no per-subscriber header buffer or handler traversal.
///
/// Frames written between two flushes are coalesced (``CoalescedFrames``) and passed on as one
/// buffer at the flush, so a connection that gets several publications in one event-loop tick
/// costs one pending write and one trip to the socket through the pipeline, not one per frame
/// (NIO gathered separate frames into one `writev` already: the saving is in user space). Sits on the socket side of
/// `WebSocketFrameEncoder`; what the encoder writes (pongs, the close frame) passes through,
/// after the coalesced frames written before it, so the order on the wire is the order of writing.
///
/// It also keeps the channel's writability as the last `channelWritabilityChanged` left it, as
/// the relay asks for it on every delivery (asking the channel costs an atomic load and the
/// retain of a pipeline's channel each time).
final class RawFrameWriter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?
    private var coalesced = CoalescedFrames()
    /// Whether the channel takes more writes now (false once it is gone).
    private(set) var isWritable = false

    /// Coalesced bytes are passed on before a flush once they reach this, so the channel's
    /// write-buffer water marks (and so the relay's slow-consumer queue) see them in time.
    static let maxCoalescedBytes = 16 * 1024

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.isWritable = context.channel.isWritable
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.isWritable = context.channel.isWritable
        context.fireChannelWritabilityChanged()
    }

    /// Frames still coalesced when the channel goes are dropped, as NIO fails pending writes then.
    func handlerRemoved(context: ChannelHandlerContext) {
        _ = self.coalesced.take()
        self.context = nil
        self.isWritable = false
    }

    /// Queues a whole frame (see ``Push/frame(_:opcode:)``) until the next flush; call on the
    /// channel's event loop.
    func write(frame: ByteBuffer) {
        guard let context = self.context else { return }
        self.coalesced.append(frame)
        if self.coalesced.readableBytes >= Self.maxCoalescedBytes { self.passOn(context: context) }
    }

    /// Sends the frames written since the last flush, in one write.
    func flush() {
        guard let context = self.context else { return }
        self.passOn(context: context)
        context.flush()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        self.passOn(context: context)
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        self.passOn(context: context)
        context.flush()
    }

    /// Hands the coalesced frames to the next handler as one write (not yet flushed).
    private func passOn(context: ChannelHandlerContext) {
        guard let frames = self.coalesced.take() else { return }
        context.write(self.wrapOutboundOut(frames), promise: nil)
    }
}

/// Confined to its channel's event loop, like the connection that uses it.
extension RawFrameWriter: @unchecked Sendable {}
