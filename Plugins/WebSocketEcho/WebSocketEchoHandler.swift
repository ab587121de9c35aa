import NIOCore
import NIOWebSocket
import WebSocketCore

/// Writes every message back as one frame of the same kind. Stops reading while the socket
/// cannot take more, so a client that sends without reading cannot make the gateway buffer
/// without bound.
final class WebSocketEchoHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketMessage
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = self.unwrapInboundIn(data)
        let frame = WebSocketFrame(fin: true, opcode: message.kind == .text ? .text : .binary, data: message.data)
        context.write(self.wrapOutboundOut(frame), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        try? context.channel.syncOptions?.setOption(.autoRead, value: context.channel.isWritable)
        if context.channel.isWritable { context.read() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension WebSocketEchoHandler: Sendable {}
