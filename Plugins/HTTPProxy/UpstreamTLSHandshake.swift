import NIOCore
import NIOTLS

/// Waits for the TLS handshake with an `https://` upstream, so that it counts as part of
/// connecting: bounded by `connectSeconds` (as nginx's `proxy_connect_timeout` bounds its SSL
/// handshake), and a failed handshake is a connection that could not be made, which another
/// upstream may be asked for whatever the request's method, since nothing reached the upstream.
///
/// Sits behind the TLS handler until the handshake ends, then takes itself out. Upstream
/// channels do not read automatically, so it asks for the first read; the TLS handler keeps
/// reading until the handshake is done.
final class UpstreamTLSHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    /// Succeeded when the handshake completes; failed with its error, or when the connection
    /// closes first.
    let completed: EventLoopPromise<Void>

    init(completed: EventLoopPromise<Void>) {
        self.completed = completed
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            self.completed.succeed()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.completed.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.completed.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}
