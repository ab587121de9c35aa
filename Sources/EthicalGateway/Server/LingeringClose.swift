import NIOCore

/// Closes an HTTP/1 connection after a response that ends it the way nginx's `lingering_close`
/// does: first only the sending side (the client reads the whole response and a clean end),
/// then, while the client may still be sending (an upload the gateway refused, the rest of an
/// oversized head), everything it sends is read and thrown away until it closes its side, or
/// falls silent for ``quietPeriod``, or ``maximum`` has passed.
///
/// Closing both sides while unread bytes wait makes the kernel answer with a reset: the client
/// then fails mid-upload (a browser shows a network error) instead of reading the 413 or 431.
///
/// It sits first in the pipeline (before TLS: what arrives is not even decrypted), and only
/// reads; the close of the sending side (with TLS a `close_notify`) passes it untouched.
final class LingeringCloseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// The connection closes once the client has sent nothing for this long.
    static let quietPeriod = TimeAmount.seconds(Int64(2))
    /// The connection closes this long after the response at the latest.
    static let maximum = TimeAmount.seconds(Int64(30))

    /// Half-closes `channel` and discards what it still receives; it closes fully as described
    /// above. Falls back to a full close where half-closing is not possible.
    static func close(_ channel: any Channel) {
        channel.eventLoop.assertInEventLoop()
        let handler = LingeringCloseHandler()
        do {
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        } catch {
            channel.close(promise: nil)
            return
        }
        let halfClosed = channel.eventLoop.makePromise(of: Void.self)
        channel.close(mode: .output, promise: halfClosed)
        halfClosed.futureResult.whenFailure { _ in channel.close(promise: nil) }
    }

    private var heardSinceCheck = false
    private let started = NIODeadline.now()
    private var check: Scheduled<Void>?

    func handlerAdded(context: ChannelHandlerContext) {
        self.scheduleCheck(context: context)
        // Handlers behind this one may hold reads while their exchange is open; the discarding
        // happens here, so reading goes on regardless.
        context.read()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.check?.cancel()
        self.check = nil
    }

    /// Every ``quietPeriod``: close unless the client sent something since the last check (and
    /// ``maximum`` has not passed).
    private func scheduleCheck(context: ChannelHandlerContext) {
        self.check = context.eventLoop.assumeIsolated().scheduleTask(in: Self.quietPeriod) {
            guard self.heardSinceCheck, NIODeadline.now() - self.started < Self.maximum else {
                self.check = nil
                context.close(promise: nil)
                return
            }
            self.heardSinceCheck = false
            self.scheduleCheck(context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.heardSinceCheck = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client closed its side (connections allow half-closure): nothing more will come.
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.check?.cancel()
        self.check = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset from the client while lingering: nothing is left to deliver.
        context.close(promise: nil)
    }
}
