import NIOCore

/// Guards the bytes of an HTTP/1.1 request head before the HTTP decoder buffers them: a head
/// that grows past the limits gets a 431, and a head that is not complete within the
/// header-read timeout gets a 408 (slow clients cannot hold a connection open by trickling
/// header bytes). Sits between TLS and the HTTP decoder; the ``GatewayHTTPHandler`` tells it
/// when a head is complete and when the next one is due.
final class RequestHeadGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Waiting for a head; `bytes` of it have arrived.
        case awaitingHead(bytes: Int)
        case inRequest
        case rejected
    }

    private let maxHeadBytes: Int
    private let timeout: TimeAmount
    private var state = State.awaitingHead(bytes: 0)
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(limits: RequestLimits) {
        // Request line and header separators come on top of the configured name/value sizes.
        self.maxHeadBytes = limits.maxURIBytes + limits.maxHeaderBytes + 4 * limits.maxHeaderCount + 1024
        self.timeout = .nanoseconds(Int64(limits.headerReadTimeoutSeconds * 1_000_000_000))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // A new connection must send its first head in time, even if it sends nothing at all.
        if context.channel.isActive { self.startTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if self.timer == nil { self.startTimer(context: context) }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.state {
        case .awaitingHead(let bytes):
            let total = bytes + self.unwrapInboundIn(data).readableBytes
            if total > self.maxHeadBytes {
                self.reject(context: context, status: "431 Request Header Fields Too Large", linger: true)
                return
            }
            if bytes == 0 && self.timer == nil { self.startTimer(context: context) }
            self.state = .awaitingHead(bytes: total)
            context.fireChannelRead(data)
        case .inRequest:
            context.fireChannelRead(data)
        case .rejected:
            break
        }
    }

    /// The decoder produced a complete head.
    func headReceived() {
        guard case .awaitingHead = self.state else { return }
        self.state = .inRequest
        self.timer?.cancel()
        self.timer = nil
    }

    /// The exchange is over; the next head's timer starts with its first byte.
    func awaitNextHead() {
        guard case .inRequest = self.state else { return }
        self.state = .awaitingHead(bytes: 0)
    }

    private func startTimer(context: ChannelHandlerContext) {
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: self.timeout) {
            guard case .awaitingHead = self.state, let context = self.context else { return }
            self.reject(context: context, status: "408 Request Timeout", linger: false)
        }
    }

    /// Answers on the raw connection (the decoder never saw a complete head) and closes. With
    /// `linger`, what the client still sends meanwhile is read and discarded first
    /// (``LingeringCloseHandler``): the rest of an oversized head is on its way; a client that
    /// timed out is not sending.
    private func reject(context: ChannelHandlerContext, status: String, linger: Bool) {
        self.state = .rejected
        self.timer?.cancel()
        self.timer = nil
        let response = "HTTP/1.1 \(status)\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
        context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(string: response)))
            .assumeIsolated().whenComplete { _ in
                if linger { LingeringCloseHandler.close(context.channel) } else { context.close(promise: nil) }
            }
    }
}

@available(*, unavailable)
extension RequestHeadGuard: Sendable {}
