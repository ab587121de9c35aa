import NIOCore

/// Closes the connection when the client has closed its sending side and no handler before
/// this one took care of it. Connections accept half-closure (so an HTTP/1.1 client that sends
/// its requests and shuts its side still gets every answer); this sits at the end of the
/// pipelines that have nothing more to say after the client's end: HTTP/2, the redirect
/// listener, and upgraded connections.
final class CloseOnInputClosedHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

@available(*, unavailable)
extension CloseOnInputClosedHandler: Sendable {}
